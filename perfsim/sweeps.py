"""What-if sweeps: predict every point of a grid of settings, in parallel, as flat records.

A grid maps setting names to lists of values; the sweep runs their Cartesian product. Names are any
``perfsim predict`` field (``model``, ``hw``, ``precision``, vLLM flags such as ``tensor_parallel_size``,
bench flags such as ``max_concurrency``) or a hardware what-if factor ``hw_scale.<key>`` (see
``HardwareSpec.scaled``: ``hbm_bandwidth``, ``hbm_capacity``, ``flops``, ``flops_nvfp4``, ...).
"""

from __future__ import annotations

import csv
import itertools
import os
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from perfsim.errors import PerfsimError, SpecError
from perfsim.prediction import predict
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
    "mean_ttft_ms",
    "median_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "p99_tpot_ms",
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

    def write_csv(self, path: str) -> None:
        """Write the records as CSV (the union of keys, in first-seen order)."""
        keys: list[str] = []
        for r in self.records:
            keys += [k for k in r if k not in keys]
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.records)


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
) -> SweepResult:
    """Predict every point of ``grid`` (Cartesian product) on top of ``base`` settings.

    ``workers``: processes to use (default: CPU count; 1 = in this process). A progress bar is shown on a
    terminal. Points that cannot be predicted (e.g. the model does not fit) carry an ``error`` message.
    """
    points = grid_points(grid, base)
    empty = [k for k, v in grid.items() if isinstance(v, (list, tuple, range)) and len(v) == 0]
    if empty:
        raise SpecError(f"sweep keys with no values: {', '.join(empty)}")
    for point in points:
        check_point(point)  # unknown names and invalid values fail before anything runs
    started = time.perf_counter()
    workers = workers or (os.cpu_count() or 1)
    show = progress and sys.stderr.isatty()
    records: list[dict[str, Any]] = []

    def tick(n: int) -> None:
        if show:
            width = 30
            filled = int(width * n / max(len(points), 1))
            sys.stderr.write(f"\r  sweep [{'#' * filled}{'.' * (width - filled)}] {n}/{len(points)}")
            if n == len(points):
                sys.stderr.write("\n")
            sys.stderr.flush()

    if workers > 1 and len(points) > 1:
        with ProcessPoolExecutor(min(workers, len(points))) as pool:
            for i, record in enumerate(pool.map(run_point, points, chunksize=1)):
                records.append(record)
                tick(i + 1)
    else:
        for i, point in enumerate(points):
            records.append(run_point(point))
            tick(i + 1)
    return SweepResult(records=records, wall_s=time.perf_counter() - started)
