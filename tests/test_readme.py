"""The README's headline tables are what perfsim predicts today, digit for digit.

The tables are read from README.md and every number in them is recomputed: when a change moves a
prediction, this test names the README cell to update.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import perfsim

README = Path(__file__).resolve().parent.parent / "README.md"
V32 = {"model": "deepseek-v3.2", "hw": "gb300", "precision": "fp4"}
BUDGET = {"tensor_parallel_size": 2, "max_num_batched_tokens": 20480}


def _table_after(heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after ``heading``."""
    text = README.read_text()
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return [r for r in rows if not set("".join(r)) <= set("-: ")]


def _number(cell: str) -> float:
    return float(re.sub(r"[^0-9.+-]", "", cell.split("(")[0]))


def _predict(bench: dict, deployment: dict) -> dict:
    return perfsim.predict(**V32, deployment=deployment, bench={"num_prompts": 1000, **bench}).result


def test_headline_table():
    rows = _table_after("## What it predicts, next to the measurements")
    prefill = {"random_input_len": 2048, "random_output_len": 1, "max_concurrency": 64}
    budget_row, default_row = rows[1], rows[2]
    published = _number(budget_row[1])
    for row, deployment in ((budget_row, BUDGET), (default_row, {"tensor_parallel_size": 2})):
        got = _predict(prefill, deployment)["total_token_throughput_per_gpu"]
        assert f"{got:,.0f}" == row[2], f"README '{row[0][:40]}...': perfsim column"
        assert f"{100 * (got - published) / published:+.1f}%" == row[3], (
            f"README '{row[0][:40]}...': error column"
        )


def test_the_2816_question_table():
    rows = _table_after("### The 2,816 tokens/s question")
    header, throughput, tpot, kv = rows[0], rows[1], rows[2], rows[3]
    for i, cell in enumerate(header[1:], start=1):
        r = _predict(
            {"random_input_len": 2048, "random_output_len": 1024, "max_concurrency": int(cell)}, BUDGET
        )
        assert f"{r['output_throughput']:,.0f}" == throughput[i], f"output tok/s at concurrency {cell}"
        assert f"{r['mean_tpot_ms']:.1f}" == tpot[i], f"mean TPOT at concurrency {cell}"
        expected_kv = f"{100 * r['peak_kv_cache_usage']:.0f}%"
        if r["num_preemptions"]:
            expected_kv += f" ({r['num_preemptions']} preemptions)"
        assert expected_kv == kv[i], f"peak KV usage at concurrency {cell}"


@pytest.mark.parametrize(
    "heading", ["## What it predicts, next to the measurements", "### The 2,816 tokens/s question"]
)
def test_the_tables_are_found(heading):
    assert len(_table_after(heading)) >= 3


def test_the_accuracy_tables_are_the_profiles():
    """The README's accuracy tables are the committed profile's numbers, cell for cell."""
    from perfsim.calibration.profiles import read_profile

    profile = read_profile("default")
    assert profile is not None
    rows = _table_after("## Calibration and accuracy")
    classes = ["throughput", "ttft", "tpot", "kernel"]
    keys = {"spec-only": "spec_only_error", "fitted": "fit_error", "leave-one-group-out": "cv_error"}
    keys["leave-one-GPU-out"] = "gpu_out_error"
    for row in rows[1:]:
        label = row[0].strip("*").split(" (")[0]
        for cls, cell in zip(classes, row[1:], strict=True):
            stats = profile[keys[label]][cls]
            assert cell.strip("*") == f"{stats['median_abs_pct']:.1f}% / {stats['p90_abs_pct']:.1f}%", (
                label,
                cls,
            )
    per_gpu = _table_after("Leave-one-GPU-out (each GPU predicted")
    for hw, n, spec, out in per_gpu[1:]:
        a, b = profile["spec_only_error_by_hw"][hw], profile["gpu_out_error_by_hw"][hw]
        assert int(n) == a["n"] and spec == f"{a['median_abs_pct']:.1f}% / {a['p90_abs_pct']:.1f}%"
        assert out == f"{b['median_abs_pct']:.1f}% / {b['p90_abs_pct']:.1f}%"


def test_the_gpt_oss_table_is_the_vllm_0_13_profiles():
    """The gpt-oss per-GPU table is the 0.13.0 profile's spec-only and leave-one-GPU-out error, cell for cell."""
    from perfsim.calibration.profiles import read_profile

    profile = read_profile("vllm-0.13.0")
    assert profile is not None
    rows = _table_after("### gpt-oss-120b on B200 and H200")
    assert len(rows) == 7
    for hw, metric, n, spec, out in rows[1:]:
        cls = metric.lower()
        a = profile["spec_only_error_by_hw_class"][hw][cls]
        b = profile["gpu_out_error_by_hw_class"][hw][cls]
        assert int(n) == a["n"] and spec == f"{a['median_abs_pct']:.1f}% / {a['p90_abs_pct']:.1f}%", (hw, cls)
        assert out == f"{b['median_abs_pct']:.1f}% / {b['p90_abs_pct']:.1f}%", (hw, cls)


def test_the_tp_out_table_is_the_vllm_0_13_profiles():
    from perfsim.calibration.profiles import read_profile

    profile = read_profile("vllm-0.13.0")
    assert profile is not None
    rows = _table_after("| held-out TP size |")  # the heading is the header row itself
    assert [r[0] for r in rows] == ["TP1", "TP8"]
    for tp, n, cell in rows:
        stats = profile["tp_out_error_by_tp"][tp.lower()]
        assert (
            int(n) == stats["n"] and cell == f"{stats['median_abs_pct']:.1f}% / {stats['p90_abs_pct']:.1f}%"
        )
