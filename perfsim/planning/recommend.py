"""The recommendation for one SLO set: the deployment with the most goodput per GPU among those meeting it."""

from __future__ import annotations

from typing import Any

from perfsim.planning.commands import bench_command, serve_commands


def _excess(record: dict[str, Any], slos_ms: dict[str, float]) -> float:
    """How far a candidate's mean latencies are above the objectives (1 = at the objective), the worst metric."""
    return (
        max((record.get(f"mean_{m}_ms") or 0.0) / max(ms, 1e-9) for m, ms in slos_ms.items())
        if slos_ms
        else 0.0
    )


def recommend(
    records: list[dict[str, Any]],
    k: int | None,
    pairs: list[str] | None,
    attainment: float,
    checkpoint: str,
    quantization: str | None,
    slos_ms: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The recommendation for SLO set ``k`` (its --goodput ``pairs``, ``slos_ms``), or for the most output
    throughput per GPU when ``k`` is None; ties go to fewer GPUs, then to the earlier candidate. When none meets
    the set, the closest is the one most requests meet, then the one whose mean latencies exceed it least."""
    ok = [r for r in records if r["error"] is None]
    if k is None:
        score, eligible = "output_tok_s_per_gpu", ok
    else:
        score = f"slo{k}_goodput_tok_s_per_gpu"
        eligible = [r for r in ok if r[f"slo{k}_attainment"] >= attainment]
    out: dict[str, Any] = {"goodput": pairs, "slo_attainment": attainment if k is not None else None}
    if not eligible:
        closest = max(ok, key=lambda r: (r[f"slo{k}_attainment"], -_excess(r, slos_ms or {})), default=None)
        out["candidate"] = None
        out["reason"] = (
            f"no deployment meets it: the closest is {closest['shape']} at {closest['load']}, "
            f"where {100 * closest[f'slo{k}_attainment']:.0f} % of requests do"
            if closest is not None
            else "no deployment could be simulated"
        )
        return out
    best = max(eligible, key=lambda r: (r[score], -r["num_gpus"], -r["id"]))
    band = (best.get("error_band_throughput_pct") or 0.0) / 100
    out.update(
        candidate=best["id"],
        shape=best["shape"],
        num_gpus=best["num_gpus"],
        max_concurrency=best["max_concurrency"],
        request_rate=best.get("request_rate"),
        load=best["load"],
        score=score,
        score_value=best[score],
        score_band=[
            max(best[score] * (1 - band), 0.0),
            best[score] * (1 + band),
        ],  # an error band past 100 % stops at 0
        attainment=best.get(f"slo{k}_attainment") if k is not None else None,
        vllm_serve=serve_commands(checkpoint, quantization, best["settings"]),
        vllm_bench_serve=bench_command(checkpoint, best["bench"], pairs),
    )
    return out
