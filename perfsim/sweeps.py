"""What-if sweeps: predict every point of a grid of settings, in parallel, as flat records.

A grid maps setting names to lists of values; the sweep runs their Cartesian product. Names are any
``perfsim predict`` field (``model``, ``hw``, ``precision``, vLLM flags such as ``tensor_parallel_size``,
bench flags such as ``max_concurrency``) or a hardware what-if factor ``hw_scale.<key>`` (see
``HardwareSpec.scaled``: ``hbm_bandwidth``, ``hbm_capacity``, ``flops``, ``flops_nvfp4``, ...).
"""

from __future__ import annotations

import csv
import itertools
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from perfsim.errors import PerfsimError, SpecError
from perfsim.executors import Executor, Journal, make_executor, run_all
from perfsim.prediction import predict
from perfsim.report_predict import records_html
from perfsim.serving.metrics import LATENCY_SUMMARY_KEYS
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import Deployment
from perfsim.specs.hardware import SCALE_KEYS, load_hardware
from perfsim.specs.loading import build_settings
from perfsim.specs.setup import Setup

#: the metrics copied into every sweep record
RECORD_METRICS = (
    "num_gpus",
    "duration",
    "completed",
    "request_throughput",
    "output_throughput",
    "total_token_throughput",
    "output_throughput_per_gpu",
    "total_token_throughput_per_gpu",
    "max_output_tokens_per_s",
    *LATENCY_SUMMARY_KEYS,
    "mean_itl_ms",
    "p99_itl_ms",
    "num_preemptions",
    "mean_running_requests",
    "mean_kv_cache_usage",
)


def split_point(point: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
    """(setup, deployment, bench, hw_scale factors, other) settings of a grid point; unknown names refused."""
    setup, dep, bench, scale, other = {}, {}, {}, {}, {}
    for key, value in point.items():
        k = key.replace("-", "_")
        if k in Setup.model_fields:
            setup[k] = value
        elif k in Deployment.model_fields:
            dep[k] = value
        elif k in BenchConfig.model_fields:
            bench[k] = value
        elif k.startswith("hw_scale."):
            factor = k.split(".", 1)[1]
            if factor not in SCALE_KEYS and not factor.startswith("flops_"):
                raise SpecError(
                    f"unknown what-if factor '{factor}'; allowed: {', '.join(SCALE_KEYS)}, flops_<precision>",
                    field=key,
                )
            try:
                scale[factor] = float(value)
            except (TypeError, ValueError):
                raise SpecError(f"factor {value!r} is not a number", field=key) from None
            if not (math.isfinite(scale[factor]) and scale[factor] > 0) or isinstance(value, bool):
                raise SpecError(f"factor {value!r} must be a finite number > 0", field=key)
        elif k in ("calibration", "label"):
            other[k] = value
        else:
            allowed = sorted([*Setup.model_fields, *Deployment.model_fields, *BenchConfig.model_fields])
            raise SpecError(
                f"unknown sweep key '{key}'; use a predict setting ({', '.join(allowed)}), "
                "'calibration', or hw_scale.<factor>"
            )
    return setup, dep, bench, scale, other


def check_point(point: Mapping[str, Any]) -> None:
    """Refuse a grid point whose names or values are invalid (before anything is simulated)."""
    setup, dep, bench, _scale, _other = split_point(point)
    build_settings(Setup, setup, "setup")
    build_settings(Deployment, dep, "deployment")
    build_settings(BenchConfig, bench, "bench")


def run_point(point: Mapping[str, Any]) -> dict[str, Any]:
    """Predict one grid point; returns a flat record (settings, metrics, provenance, or the error)."""
    record: dict[str, Any] = dict(point)
    try:
        setup, dep, bench, scale, other = split_point(point)
        s = Setup(**setup)
        hw = load_hardware(s.hw)
        if scale:
            hw = hw.scaled(**scale)
        pred = predict(
            s.model,
            hw,
            s.precision,
            deployment=Deployment(**dep),
            bench=BenchConfig(**bench),
            calibration=other.get("calibration", "default"),
        )
        r = pred.result
        record.update({k: r.get(k) for k in RECORD_METRICS})
        record["tensor_parallel_size"] = r["config"]["tensor_parallel_size"]
        band = r["prediction"]
        record["calibration"] = band.get("calibration")
        record["extrapolated"] = bool(band.get("extrapolated"))
        for cls, eb in (band.get("error_band") or {}).items():
            record[f"error_band_{cls}_pct"] = eb["median_abs_pct"]
        record["error"] = None
    except (PerfsimError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        record["error"] = " ".join(str(exc).split())
    return record


@dataclass
class SweepResult:
    """Records of a sweep, one flat dict per grid point (in grid order)."""

    records: list[dict[str, Any]]
    wall_s: float

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def ok(self) -> list[dict[str, Any]]:
        """Records of points that could be predicted."""
        return [r for r in self.records if not r.get("error")]

    def to_dataframe(self):
        """The records as a pandas DataFrame (pandas is optional)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from exc
        return pd.DataFrame(self.records)

    def _repr_html_(self) -> str:
        """The records as a table, for Jupyter."""
        return records_html(self.records)

    def write_csv(self, path: str) -> None:
        """Write the records as CSV (the union of keys, in first-seen order)."""
        keys: list[str] = []
        for r in self.records:
            keys += [k for k in r if k not in keys]
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.records)


#: grids above this many points must be confirmed (``--yes``, ``max_points=``): about 6 minutes on 2 cores
LARGE_GRID_POINTS = 5_000
#: no grid may have more points (its records alone would take gigabytes)
MAX_GRID_POINTS = 1_000_000
#: wall seconds of one warm point per 1,000 prompts on one core (benchmarks/bench_speed.py: 68-97 ms for the
#: mixed ISL 2048 / OSL 1024 point, plus the record), for announcing a grid's run time
POINT_S_PER_1000_PROMPTS = 0.1


def grid_size(grid: Mapping[str, Iterable[Any]]) -> int:
    """Points of the Cartesian product of ``grid``, counted without building them."""
    n = 1
    for values in grid.values():
        n *= len(values) if isinstance(values, (list, tuple, range)) else 1
    return n


def estimated_sweep_s(
    grid: Mapping[str, Iterable[Any]], base: Mapping[str, Any] | None, workers: int
) -> float:
    """A rough wall time of the sweep in seconds (points x prompts x the warm per-point time / workers)."""
    given: Any = grid.get("num_prompts") or (base or {}).get("num_prompts", BenchConfig().num_prompts)
    prompts = [float(p) for p in (given if isinstance(given, (list, tuple, range)) else [given])]
    mean_point_s = POINT_S_PER_1000_PROMPTS * sum(prompts) / len(prompts) / 1000
    return grid_size(grid) * mean_point_s / max(workers, 1)


def check_grid_size(n: int, max_points: int | None) -> None:
    """Refuse a grid past ``MAX_GRID_POINTS``, or past ``max_points`` unless it was raised to cover it."""
    if n > MAX_GRID_POINTS:
        raise SpecError(f"the grid has {n:,} points; at most {MAX_GRID_POINTS:,} are allowed: split it")
    if max_points is not None and n > max_points:
        raise SpecError(
            f"the grid has {n:,} points, more than {max_points:,}: confirm it (max_points={n}, or --yes)"
        )


def grid_points(
    grid: Mapping[str, Iterable[Any]], base: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The Cartesian product of a grid, each point on top of ``base``."""
    keys = list(grid)
    values = [list(v) if isinstance(v, (list, tuple, range)) else [v] for v in grid.values()]
    return [{**(base or {}), **dict(zip(keys, combo, strict=True))} for combo in itertools.product(*values)]


def sweep(
    grid: Mapping[str, Iterable[Any]],
    *,
    base: Mapping[str, Any] | None = None,
    workers: int | None = None,
    progress: bool = True,
    max_points: int | None = LARGE_GRID_POINTS,
    executor: Executor | str | None = None,
    journal: Journal | None = None,
) -> SweepResult:
    """Predict every point of ``grid`` (Cartesian product) on top of ``base`` settings.

    ``workers``: processes to use (default: CPU count; 1 = in this process); ``executor``: where the points run
    (an ``Executor`` or an ``--executor`` spelling: local, dask, dask://HOST:PORT, ray, ray://HOST:PORT);
    ``journal``: finished points are kept there and not rerun (resume). A progress bar is shown on a
    terminal and in Jupyter. Points that cannot be predicted (e.g. the model does not fit) carry an ``error``
    message. A grid of more than ``max_points`` points is refused until ``max_points`` covers it.
    """
    check_grid_size(grid_size(grid), max_points)
    points = grid_points(grid, base)
    empty = [k for k, v in grid.items() if isinstance(v, (list, tuple, range)) and len(v) == 0]
    if empty:
        raise SpecError(f"sweep keys with no values: {', '.join(empty)}")
    for point in points:
        check_point(point)  # unknown names and invalid values fail before anything runs
    started = time.perf_counter()
    runner = (
        executor
        if executor is not None and not isinstance(executor, str)
        else make_executor(executor, workers)
    )
    try:
        records = run_all(run_point, points, runner, journal=journal, progress=progress, description="sweep")
    finally:
        if runner is not executor:  # started here: stopped here
            runner.close()
    return SweepResult(records=records, wall_s=time.perf_counter() - started)
