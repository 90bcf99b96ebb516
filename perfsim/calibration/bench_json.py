"""Rows from ``vllm bench serve --save-result`` JSON files, with the settings the file cannot say."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from perfsim.calibration.measurement import Measurement, check_scenario, metric_class, normalize_setup
from perfsim.errors import SpecError
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import Deployment

#: metrics taken from a bench-serve JSON when present (TPOT only when more than one output token)
JSON_METRICS = (
    "total_token_throughput",
    "output_throughput",
    "max_output_tokens_per_s",
    "mean_ttft_ms",
    "mean_tpot_ms",
)


def load_bench_json(path: Path, setup: dict[str, Any]) -> list[Measurement]:
    """Rows from one ``vllm bench serve --save-result`` JSON; ``setup`` says what the JSON cannot.

    ``setup`` keys: ``model``, ``hw``, ``precision``, any ``vllm serve`` flag (Deployment field) and any bench
    flag (BenchConfig field). Missing ``random_input_len`` / ``random_output_len`` are inferred from the
    JSON's token totals (mean lengths; the input gets the tokenizer's special token back).
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(f"cannot read bench-serve JSON ({exc})", source=str(path)) from None
    if not isinstance(data, dict) or "completed" not in data:
        raise SpecError("not a vllm bench serve --save-result file (no 'completed' key)", source=str(path))
    setup = normalize_setup(setup, str(path.with_suffix(".yaml").name))
    missing = [k for k in ("model", "hw", "precision") if k not in setup]
    if missing:
        raise SpecError(
            f"say {', '.join(missing)} for this run in a sidecar {path.with_suffix('.yaml').name} or "
            f"with --set KEY=VALUE",
            source=str(path),
        )
    dep = {k: v for k, v in setup.items() if k in Deployment.model_fields}
    bench = {k: v for k, v in setup.items() if k in BenchConfig.model_fields}
    notes: list[str] = []

    def number(key: str, default: float | None = None) -> float:
        value = data.get(key, default)
        try:
            return float(value)  # type: ignore[arg-type]  # anything float() refuses is reported below
        except (TypeError, ValueError):
            raise SpecError(f"'{key}' is {value!r}, expected a number", source=str(path), field=key) from None

    completed = int(number("completed")) or 1
    bench.setdefault("num_prompts", int(number("num_prompts", completed) or completed))
    if data.get("max_concurrency") is not None:
        bench.setdefault("max_concurrency", int(number("max_concurrency")))
    rate = data.get("request_rate", "inf")
    bench.setdefault("request_rate", math.inf if rate in ("inf", None) else number("request_rate"))
    bench.setdefault("burstiness", number("burstiness", 1.0))
    if "random_input_len" not in bench:
        bench["random_input_len"] = round(number("total_input_tokens") / completed) + 1
        notes.append(f"random_input_len={bench['random_input_len']}: mean prompt length from the JSON + BOS")
    if "random_output_len" not in bench:
        bench["random_output_len"] = max(1, round(number("total_output_tokens") / completed))
        notes.append(f"random_output_len={bench['random_output_len']}: mean output length from the JSON")
    check_scenario(dep, bench, str(path))
    unknown = None  # rate inf without a concurrency limit is a known load: every request at t = 0
    out = []
    for metric in JSON_METRICS:
        if metric not in data or data[metric] in (None, 0):
            continue
        if metric == "mean_tpot_ms" and bench["random_output_len"] <= 1:
            continue
        scope = "deployment" if metric_class(metric) == "throughput" else "request"
        out.append(
            Measurement(
                group=str(setup.get("group", path.stem)),
                model=setup["model"],
                hw=setup["hw"],
                precision=setup["precision"],
                deployment=dep,
                bench=bench,
                metric=metric,
                value=number(metric),
                scope=scope,
                source=path.name,
                assumptions=tuple(notes),
                unknown=unknown,
            )
        )
    return out
