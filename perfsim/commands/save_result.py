"""``--save-result`` as vllm bench serve 0.14.1 writes it: one JSON object per file, vLLM's file name.

File name ``{label}-{request_rate}qps[-concurrency{N}]-{base model id}-{date}.json`` with ``label`` defaulting to
the backend (``vllm``), unless ``--result-filename`` names it; ``--result-dir`` is created when missing
[vllm/benchmarks/serve.py:1735-1757]. ``--metadata KEY=VALUE`` pairs are stored as top-level keys (:1693-1701).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perfsim.commands.common import check_output_path
from perfsim.errors import SpecError
from perfsim.serving.workload import BenchConfig


def parse_metadata(pairs: Sequence[str]) -> dict[str, str]:
    """``--metadata`` KEY=VALUE pairs, as bench serve parses them."""
    out: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--metadata '{item}': use KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def result_filename(result: dict[str, Any], bench: BenchConfig) -> str:
    """vLLM's name of a saved result."""
    label = result.get("label") or "vllm"
    rate = "inf" if math.isinf(bench.request_rate) else str(bench.request_rate)
    concurrency = f"-concurrency{bench.max_concurrency}" if bench.max_concurrency is not None else ""
    model = str(result.get("model_id") or "model").split("/")[-1]
    return f"{label}-{rate}qps{concurrency}-{model}-{result['date']}.json"


def save_result(
    result: dict[str, Any],
    bench: BenchConfig,
    result_dir: str | None,
    filename: str | None,
    *,
    inputs: Sequence[str],
) -> str:
    """Write one result object where bench serve would; returns the path."""
    name = filename or result_filename(result, bench)
    path = Path(result_dir) / name if result_dir else Path(name)
    if result_dir:
        os.makedirs(result_dir, exist_ok=True)
    check_output_path(str(path), inputs=inputs)
    text = json.dumps(result, default=_json_default, allow_nan=False)
    path.write_text(text)
    return str(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
