"""Rows from ``vllm bench serve --save-result`` JSON files, with the settings the file cannot say."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from perfsim.calibration.measurement import (
    LATENCY_METRIC,
    Measurement,
    check_scenario,
    metric_class,
    normalize_setup,
)
from perfsim.errors import SpecError
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import Deployment
from perfsim.specs.loading import parse_json, read_text

#: keys of a result object that are settings (vllm serve and bench flags, from bench serve's --metadata)
#: bench settings bench serve stores in every result (read from the result itself)
BENCH_KEYS = frozenset({"num_prompts", "max_concurrency", "request_rate", "burstiness"})
SETTING_KEYS = frozenset({"group", *Deployment.model_fields, *BenchConfig.model_fields}) - {
    "num_prompts",
    "max_concurrency",
    "request_rate",
    "burstiness",
}

#: keys of a result object that may say what the run was (bench serve's --metadata KEY=VALUE lands there)
HW_KEYS = ("hw", "hardware", "gpu")


def result_objects(path: Path) -> list[dict[str, Any]]:
    """The result objects of a ``--save-result`` file (one) or an ``--append-result`` file (one per line)."""
    text = read_text(path).strip()
    try:
        loaded = parse_json(text)
        objects: list[Any] = (
            loaded if isinstance(loaded, list) else [loaded]
        )  # a list: perfsim predict --json
    except json.JSONDecodeError:
        try:
            objects = [parse_json(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise SpecError(f"not a bench-serve JSON file ({exc})", source=str(path)) from None
    if not objects or not all(isinstance(o, dict) and "completed" in o for o in objects):
        raise SpecError("not a vllm bench serve --save-result file (no 'completed' key)", source=str(path))
    return objects


def load_bench_json(path: Path, setup: dict[str, Any]) -> list[Measurement]:
    """Rows from one ``vllm bench serve --save-result`` (or ``--append-result``) file; ``setup`` says what the
    file cannot. Every saved metric becomes a row: throughputs and the mean, median, std and percentiles of
    TTFT, TPOT, ITL and E2EL.

    The model comes from ``setup`` or the file's ``model_id`` (a Hugging Face id decides the checkpoint); the GPU
    from ``setup`` or a ``hw`` / ``hardware`` / ``gpu`` key (bench serve's ``--metadata hw=gb300``); other keys of
    the file that are vllm serve or bench flags (from ``--metadata``) are settings too. Missing
    ``random_input_len`` / ``random_output_len`` are inferred from the token totals.
    """
    objects = result_objects(path)
    out: list[Measurement] = []
    for i, data in enumerate(objects):
        group = path.stem if len(objects) == 1 else f"{path.stem}#{i + 1}"
        out += _rows(path, data, setup, group)
    return out


def _rows(path: Path, data: dict[str, Any], setup: dict[str, Any], group: str) -> list[Measurement]:
    from_file = {k: v for k, v in data.items() if str(k).replace("-", "_") in SETTING_KEYS and k not in setup}
    setup = normalize_setup({**from_file, **setup}, str(path.with_suffix(".yaml").name))
    if "model" not in setup and data.get("model_id"):
        setup["model"] = str(data["model_id"])
    raw_config = data.get("config")
    config: dict[str, Any] = raw_config if isinstance(raw_config, dict) else {}  # perfsim's own results
    for key in HW_KEYS:
        if "hw" not in setup and (data.get(key) or config.get(key)):
            setup["hw"] = str(data.get(key) or config.get(key))
    resolved = {
        **{k: v for k, v in config.items() if k in Deployment.model_fields},
        **(config.get("bench") or {}),
    }
    for key, value in resolved.items():  # perfsim's own result: its resolved settings, exactly
        if value is not None and key not in setup and key in SETTING_KEYS | BENCH_KEYS:
            setup[key] = value
    setup.setdefault("precision", "auto")
    missing = [k for k in ("model", "hw") if k not in setup]
    if missing:
        raise SpecError(
            f"say {', '.join(missing)} for this run in a sidecar {path.with_suffix('.yaml').name}, with --set "
            "KEY=VALUE, or when benchmarking with --metadata hw=<gpu>",
            source=str(path),
        )
    dep = {k: v for k, v in setup.items() if k in Deployment.model_fields}
    bench = {k: v for k, v in setup.items() if k in BenchConfig.model_fields}
    notes: list[str] = []

    def number(key: str, default: float | None = None) -> float:
        value = data.get(key, default)
        try:
            out = float(value)  # type: ignore[arg-type]  # anything float() refuses is reported below
        except (TypeError, ValueError):
            raise SpecError(f"'{key}' is {value!r}, expected a number", source=str(path), field=key) from None
        if math.isnan(out) or (math.isinf(out) and key != "request_rate"):
            raise SpecError(f"'{key}' is {value!r}, expected a finite number", source=str(path), field=key)
        return out

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
    metrics = [
        k
        for k, v in data.items()
        if metric_class(k) is not None
        and k != "request_goodput"
        and isinstance(v, int | float)
        and not isinstance(v, bool)
    ]
    percentiles = sorted({m[2] for k in metrics if (m := LATENCY_METRIC.fullmatch(k)) and m[2]}, key=float)
    bench.setdefault("percentile_metrics", "ttft,tpot,itl,e2el")
    if percentiles:
        bench.setdefault("metric_percentiles", ",".join(percentiles))
    check_scenario(dep, bench, str(path))
    out = []
    for metric in metrics:
        number(metric)  # NaN or infinite values are refused, not dropped
        if data[metric] == 0 and metric_class(metric) == "throughput":
            continue
        if metric_class(metric) == "tpot" and bench["random_output_len"] <= 1:
            continue
        scope = "deployment" if metric_class(metric) == "throughput" else "request"
        out.append(
            Measurement(
                group=str(setup.get("group", group)),
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
                unknown=None,  # rate inf without a concurrency limit is a known load: every request at t = 0
            )
        )
    return out
