"""Executors: the local pool, a real local Dask cluster and a local Ray instance (2 CPUs, started here) give the
same results; a worker killed mid-run costs no point and duplicates none; an interrupted run resumes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from perfsim.errors import SpecError
from perfsim.executors import Journal, make_executor, run_all
from perfsim.sweeps import sweep

SMALL = {"num_prompts": 12, "random_input_len": 300, "random_output_len": 6}
GRID = {"max_concurrency": [1, 4], "tensor_parallel_size": [2, 4]}


def square_or_die_once(item: tuple[int, str]) -> int:
    """item**2; the first time item 3 runs, its worker process dies (as an OOM kill would)."""
    value, marker_dir = item
    marker = Path(marker_dir) / f"died-{value}"
    if value == 3 and not marker.exists():
        marker.write_text("x")
        os._exit(1)
    return value * value


def _by_value_in_workers() -> None:
    """Dask and Ray workers do not have this test module on their path: send its functions by value."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def dask_executor():
    pytest.importorskip("distributed")
    _by_value_in_workers()
    executor = make_executor("dask", workers=2)
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def ray_executor():
    pytest.importorskip("ray")
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    executor = make_executor("ray", workers=2)
    yield executor
    executor.close()


def test_sweeps_on_dask_and_ray_equal_the_local_pool(dask_executor, ray_executor):
    local = sweep(GRID, base=SMALL, workers=2, progress=False).records
    assert len(local) == 4 and all(r["error"] is None for r in local)
    on_dask = sweep(GRID, base=SMALL, executor=dask_executor, progress=False).records
    on_ray = sweep(GRID, base=SMALL, executor=ray_executor, progress=False).records
    dump = lambda records: json.dumps(records, sort_keys=True)  # noqa: E731
    assert dump(on_dask) == dump(local) and dump(on_ray) == dump(local)


@pytest.mark.parametrize("where", ["local", "dask", "ray"])
def test_a_worker_killed_mid_run_costs_no_point_and_duplicates_none(where, tmp_path, request):
    executor = (
        make_executor("local", workers=2)
        if where == "local"
        else request.getfixturevalue(f"{where}_executor")
    )
    items = [(v, str(tmp_path)) for v in range(6)]
    assert run_all(square_or_die_once, items, executor, progress=False) == [0, 1, 4, 9, 16, 25]
    assert (tmp_path / "died-3").exists()  # the worker did die once


def test_an_interrupted_run_resumes_from_its_journal_without_recomputing(tmp_path):
    points = [{"max_concurrency": c, **SMALL} for c in (1, 2, 3)]
    journal_path = tmp_path / "out.journal.jsonl"
    first = Journal(journal_path, points)
    first.start()
    first.add(points[0], {"made": "before the interruption"})
    with open(journal_path, "a") as fh:
        fh.write('{"key": "half a line')  # the line being written when the run was killed
    resumed = Journal(journal_path, points)
    calls: list[dict] = []

    def fake_run(point: dict) -> dict:
        calls.append(point)
        return {"made": point["max_concurrency"]}

    records = run_all(fake_run, points, make_executor("local", workers=1), journal=resumed, progress=False)
    assert records == [{"made": "before the interruption"}, {"made": 2}, {"made": 3}]
    assert [p["max_concurrency"] for p in calls] == [2, 3]  # the finished point is not recomputed
    with pytest.raises(SpecError, match="is the journal of another run"):
        Journal(journal_path, points[:2])


def test_unknown_executors_and_missing_extras_are_one_clear_line():
    with pytest.raises(SpecError, match="allowed: local, dask, dask://HOST:PORT, ray, ray://HOST:PORT"):
        make_executor("spark")


def sleep_or_interrupt(value: int) -> int:
    """Point 1 is Ctrl-C in its worker; the others would run for two minutes."""
    import time

    if value == 1:
        raise KeyboardInterrupt
    time.sleep(120)
    return value


def test_ctrl_c_stops_the_local_pool_at_once_instead_of_running_the_queued_points():
    import signal

    def hang(*_args):
        raise TimeoutError("the pool waited for its queued points")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(60)  # a watchdog, far below the 120 s the other points would take
    try:
        with pytest.raises(KeyboardInterrupt):
            run_all(sleep_or_interrupt, list(range(6)), make_executor("local", workers=2), progress=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
