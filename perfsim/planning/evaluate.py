"""Simulate one plan point (a deployment at one concurrency) into a flat record: per-GPU and per-user
throughput, latencies, SLO attainment and goodput per SLO set, and the prediction's error band."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from perfsim.errors import PerfsimError
from perfsim.prediction import predict
from perfsim.serving.metrics import LATENCY_SUMMARY_KEYS, meets_slos
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import Deployment
from perfsim.specs.setup import Setup


def evaluate_point(point: dict[str, Any]) -> dict[str, Any]:
    """``point``: {'setup', 'deployment', 'bench', 'slos' (list of {metric: ms}), 'calibration'} -> record.

    ``output_tok_s_per_user`` is 1000 / mean TPOT (a user's decode speed); goodput per GPU counts the output
    tokens of the requests that meet every objective of a set, per second of the run and per GPU.
    """
    record: dict[str, Any] = {"error": None}
    try:
        setup = Setup(**point["setup"])
        model, hw = setup.load()
        bench = BenchConfig(**point["bench"])
        pred = predict(
            model,
            hw,
            deployment=Deployment(**point["deployment"]),
            bench=bench,
            calibration=point["calibration"],
        )
    except (PerfsimError, ValueError) as exc:
        return {"error": " ".join(str(exc).split())}
    r, view = pred.result, pred.simulation.view
    gpus = r["num_gpus"]
    record.update(
        num_gpus=gpus,
        output_tok_s_per_gpu=r["output_throughput_per_gpu"],
        total_tok_s_per_gpu=r["total_token_throughput_per_gpu"],
        output_tok_s_per_user=1000.0 / r["mean_tpot_ms"] if r.get("mean_tpot_ms") else math.nan,
        request_throughput=r["request_throughput"],
        duration_s=r["duration"],
        **{k: r.get(k) for k in LATENCY_SUMMARY_KEYS},
        mean_e2el_ms=1000.0 * float(np.mean(view.last_chunk - view.send_time))
        if view.send_time.size
        else None,
    )
    band = r["prediction"]
    errors = band.get("error_band") or {}
    record["error_band_throughput_pct"] = (errors.get("throughput") or {}).get("median_abs_pct")
    record["error_band_tpot_pct"] = (errors.get("tpot") or {}).get("median_abs_pct")
    record["extrapolated"] = bool(band.get("extrapolated"))
    for k, slos in enumerate(point["slos"]):
        good = meets_slos(view, slos)
        good_tokens = float(np.asarray(view.output_tokens)[good].sum())
        record[f"slo{k}_attainment"] = float(good.mean()) if good.size else 0.0
        record[f"slo{k}_goodput_tok_s_per_gpu"] = good_tokens / r["duration"] / gpus if r["duration"] else 0.0
    return record
