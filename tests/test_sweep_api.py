"""Python API, sweeps, plots."""

from __future__ import annotations

import csv

import pytest

import perfsim
from perfsim.cli import main
from perfsim.errors import SpecError

SMALL = {"num_prompts": 30, "random_input_len": 512, "random_output_len": 16}


def test_public_api_round_trip():
    hw = perfsim.hardware("gb300").scaled(hbm_bandwidth=1.5)
    assert hw.hbm_bandwidth_Bps == pytest.approx(12e12)
    model = perfsim.model("deepseek-v3.2", "fp4")
    pred = perfsim.predict(model, hw, deployment={"tensor_parallel_size": 2}, bench=SMALL)
    assert isinstance(pred, perfsim.Prediction)
    assert pred["completed"] == 30 and pred.num_gpus == 2
    assert "Serving Benchmark Result" in pred.summary()
    step = perfsim.explain_step([512, 1, 1], [0, 100, 100], deployment={"tensor_parallel_size": 2})
    assert step.total_s > 0 and step.by_category()["moe"] > 0
    plan = perfsim.memory_plan("deepseek-v3.2", "gb300", "fp4")
    assert plan.kv_capacity_tokens > 1e6
    assert set(perfsim.known_hardware()) >= {"gb300", "h200"}


def test_faster_hbm_what_if_helps_decode():
    """Doubling HBM bandwidth speeds up decode exactly as much as the cost model's decode step says."""
    bench = {"num_prompts": 32, "random_input_len": 128, "random_output_len": 128, "max_concurrency": 16}
    fast_hw = perfsim.hardware("gb300").scaled(hbm_bandwidth=2.0)
    base = perfsim.predict(bench=bench)
    fast = perfsim.predict(hw=fast_hw, bench=bench)
    step = perfsim.explain_step([1] * 16, [192] * 16)
    fast_step = perfsim.explain_step([1] * 16, [192] * 16, hw=fast_hw)
    memory_s = sum(op.time_s for op in step.ops if op.bound == "memory")
    assert memory_s > 0.5 * step.total_s  # a batch-16 decode step is dominated by weight reads
    assert fast_step.total_s < 0.9 * step.total_s
    assert fast["mean_tpot_ms"] / base["mean_tpot_ms"] == pytest.approx(
        fast_step.total_s / step.total_s, rel=0.03
    )


def test_sweep_records_and_parallelism_agree():
    grid = {"max_concurrency": [2, 8], "precision": ["fp4", "fp8"]}
    serial = perfsim.sweep(grid, base={**SMALL, "tensor_parallel_size": 4}, workers=1, progress=False)
    parallel = perfsim.sweep(grid, base={**SMALL, "tensor_parallel_size": 4}, workers=2, progress=False)
    assert len(serial) == 4 and serial.records == parallel.records
    r = serial.records[0]
    for key in (
        "max_concurrency",
        "precision",
        "output_throughput_per_gpu",
        "mean_tpot_ms",
        "calibration",
        "error",
    ):
        assert key in r
    assert all(rec["error"] is None for rec in serial)


def test_sweep_reports_points_that_do_not_fit():
    result = perfsim.sweep(
        {"tensor_parallel_size": [1, 2]}, base={**SMALL, "precision": "fp8"}, workers=1, progress=False
    )
    assert result.records[0]["error"] and "does not fit" in result.records[0]["error"]
    assert result.ok() == []  # fp8 needs TP4 on GB300


def test_sweep_rejects_unknown_keys():
    with pytest.raises(SpecError, match="unknown sweep key 'warp'"):
        perfsim.sweep({"warp": [1]}, workers=1, progress=False)


def test_hw_scale_keys():
    result = perfsim.sweep(
        {"hw_scale.hbm_bandwidth": [1.0, 2.0]},
        base={**SMALL, "random_output_len": 64, "max_concurrency": 16},
        workers=1,
        progress=False,
    )
    slow, fast = result.records
    assert fast["mean_tpot_ms"] < slow["mean_tpot_ms"]


def test_sweep_cli_with_example_grid(tmp_path, capsys):
    out = tmp_path / "results.csv"
    plots = tmp_path / "plots"
    assert main(["sweep", "--grid", "examples/grid.yaml", "--out", str(out), "--plot", str(plots)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and {r["precision"] for r in rows} == {"fp4", "fp8"}
    assert (plots / "pareto.png").stat().st_size > 10_000
    assert (plots / "throughput_vs_concurrency.png").exists()


def test_sweep_cli_bad_grid(tmp_path, capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text("grid:\n  warp: [1]\n")
    assert main(["sweep", "--grid", str(grid), "--out", str(tmp_path / "x.csv")]) == 2
    assert "g.yaml" in capsys.readouterr().err


def test_plots_render(tmp_path):
    records = perfsim.sweep({"max_concurrency": [2, 8]}, base=SMALL, workers=1, progress=False).records
    perfsim.plots.throughput_vs_concurrency(records, tmp_path / "t.png")
    perfsim.plots.pareto(records, tmp_path / "p.png")
    cost = perfsim.explain_step([1024, 1], [0, 500], deployment={"tensor_parallel_size": 2})
    perfsim.plots.step_breakdown({"mixed": cost}, tmp_path / "b.png")
    perfsim.plots.roofline(cost, perfsim.hardware("gb300"), tmp_path / "r.png")
    for name in ("t", "p", "b", "r"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000


def test_to_dataframe_without_pandas():
    result = perfsim.sweep({"max_concurrency": [2]}, base=SMALL, workers=1, progress=False)
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pandas"):
            result.to_dataframe()
    else:
        assert len(result.to_dataframe()) == 1


def test_large_grids_are_announced_and_must_be_confirmed(tmp_path, capsys):
    from perfsim.sweeps import LARGE_GRID_POINTS, MAX_GRID_POINTS, grid_size

    big = {"seed": list(range(100)), "max_concurrency": list(range(1, 101))}  # 10,000 points
    assert grid_size(big) == 10_000 > LARGE_GRID_POINTS
    with pytest.raises(SpecError, match="10,000 points, more than 5,000: confirm it"):
        perfsim.sweep(big, workers=1)  # refused before one point is built
    grid = tmp_path / "big.yaml"
    grid.write_text(
        "grid:\n  seed: ["
        + ", ".join(map(str, range(100)))
        + "]\n  max_concurrency: ["
        + ", ".join(map(str, range(1, 101)))
        + "]\n"
    )
    out = tmp_path / "big.csv"
    code = main(["sweep", "--grid", str(grid), "--out", str(out), "--workers", "2"])
    captured = capsys.readouterr()
    assert (
        code == 2 and "sweep: 10,000 points, about 8 min on 2 worker(s)" in captured.out
    )  # 10^4 x 0.1 s / 2
    assert "add --yes to run it" in captured.err and not out.exists()
    huge = {"seed": list(range(1001)), "max_concurrency": list(range(1, 1001))}
    with pytest.raises(SpecError, match=f"at most {MAX_GRID_POINTS:,}"):
        perfsim.sweep(huge, max_points=None)


def test_predictions_and_sweeps_display_as_tables_in_jupyter():
    pred = perfsim.predict(bench=SMALL)
    pred.notes.append("a <note> & more")
    page = pred._repr_html_()
    assert f"<td>{pred['output_throughput']:.2f}</td>" in page and "Checkpoint:" in page
    assert "<li>a &lt;note&gt; &amp; more</li>" in page  # escaped
    result = perfsim.sweep({"max_concurrency": [1, 2]}, base=SMALL, workers=1)
    table = result._repr_html_()
    assert table.count("<tr>") == 3 and "<th>max_concurrency</th>" in table


def test_progress_bars_show_only_where_watched():
    from perfsim.progress import in_notebook, progress_bar

    assert not in_notebook()
    assert progress_bar(10, "x").disable  # pytest's stderr is no terminal
    assert progress_bar(10, "x", enabled=False).disable


def test_an_interrupted_sweep_resumes_from_its_journal(tmp_path, capsys):
    from perfsim.executors import Journal
    from perfsim.sweeps import grid_points

    grid_file = tmp_path / "g.yaml"
    grid_file.write_text(
        "base: {num_prompts: 8, random_input_len: 256, random_output_len: 4}\ngrid: {max_concurrency: [1, 2]}\n"
    )
    out = tmp_path / "out.csv"
    points = grid_points(
        {"max_concurrency": [1, 2]}, {"num_prompts": 8, "random_input_len": 256, "random_output_len": 4}
    )
    journal = Journal(tmp_path / "out.csv.journal.jsonl", points)
    journal.start()
    journal.add(points[0], {**points[0], "marker": "done before", "error": None})
    assert main(["sweep", "--grid", str(grid_file), "--out", str(out), "--workers", "1"]) == 0
    assert "resuming: 1 points already done" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["marker"] == "done before" and rows[1]["marker"] == "" and rows[1]["completed"] == "8"
    assert not (tmp_path / "out.csv.journal.jsonl").exists()
