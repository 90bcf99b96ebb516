"""Plots with matplotlib (Agg backend, readable defaults, labeled axes with units)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from perfsim.calibration.validate import ValidationReport
from perfsim.frontier import pareto_front

_MARKERS = "osD^vP*Xh<>p"


def _plt():
    # keep the caller's backend (inline in notebooks); headless runs fall back to Agg by themselves
    import matplotlib.pyplot as plt

    return plt


def parity_plot(report: ValidationReport, path: str | Path | None = None, *, band_pct: float = 15.0):
    """Predicted vs measured on log axes, one marker per group, with the +-``band_pct`` % band."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    groups = sorted({r.group for r in report.rows if r.unknown is None})
    lo, hi = np.inf, 0.0
    for i, g in enumerate(groups):
        idx = [k for k, r in enumerate(report.rows) if r.group == g and r.unknown is None]
        meas = np.array([report.rows[k].value for k in idx])
        pred = report.predictions[idx]
        ok = np.isfinite(pred)
        ax.scatter(meas[ok], pred[ok], marker=_MARKERS[i % len(_MARKERS)], label=g, alpha=0.8)
        if ok.any():
            lo, hi = min(lo, meas[ok].min(), pred[ok].min()), max(hi, meas[ok].max(), pred[ok].max())
    if np.isfinite(lo):
        xs = np.array([lo / 1.3, hi * 1.3])
        ax.plot(xs, xs, "k-", lw=1, label="exact")
        ax.fill_between(
            xs,
            xs * (1 - band_pct / 100),
            xs * (1 + band_pct / 100),
            color="grey",
            alpha=0.15,
            label=f"+-{band_pct:g}%",
        )
        ax.set_xlim(*xs)
        ax.set_ylim(*xs)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured (tokens/s or ms)")
    ax.set_ylabel("predicted (tokens/s or ms)")
    ax.set_title(f"perfsim vs measurements ({report.calibration})")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def _series(records, x: str, y: str, by: list[str]):
    groups: dict[tuple, list[tuple[float, float]]] = {}
    for r in records:
        if r.get("error") or r.get(x) is None or r.get(y) is None:
            continue
        key = tuple(r.get(k) for k in by)
        groups.setdefault(key, []).append((float(r[x]), float(r[y])))
    return {k: sorted(v) for k, v in groups.items()}


def _label(keys: list[str], values: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True)) or "all"


def _line_plot(
    records,
    path,
    by: list[str],
    x: str,
    y: str,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    log2_x: bool = False,
):
    """One line of ``y`` against ``x`` per combination of the ``by`` settings."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, pts in _series(records, x, y, by).items():
        xs, ys = zip(*pts, strict=True)
        ax.plot(xs, ys, marker="o", label=_label(by, key))
    if log2_x:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if by:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def throughput_vs_concurrency(
    records,
    path: str | Path | None = None,
    *,
    by: list[str] | None = None,
    metric: str = "output_throughput_per_gpu",
):
    """Throughput per GPU (tokens/s) against client concurrency, one line per other varied setting."""
    return _line_plot(
        records,
        path,
        by or [],
        "max_concurrency",
        metric,
        xlabel="max concurrency (requests)",
        ylabel=metric.replace("_", " ") + " (tokens/s)",
        title="Throughput vs concurrency",
        log2_x=True,
    )


def pareto(records, path: str | Path | None = None, *, by: list[str] | None = None):
    """Latency-throughput trade-off: tokens/s per GPU against tokens/s per user (1000 / mean TPOT in ms), every
    point, the computed Pareto front as a line with its error band, one marker per ``by`` group."""
    points = [
        {
            **r,
            "output_tok_s_per_user": 1000.0 / r["mean_tpot_ms"],
            "output_tok_s_per_gpu": r["output_throughput_per_gpu"],
            "error_band_throughput_pct": r.get("error_band_throughput_pct") or 0.0,
        }
        for r in records
        if not r.get("error") and r.get("mean_tpot_ms")
    ]
    return frontier_plot(points, path, by=by or [])


def frontier_plot(
    points: list[dict[str, Any]],
    path: str | Path | None = None,
    *,
    by: list[str] | None = None,
    recommended: list[dict[str, Any]] | None = None,
    title: str = "Throughput per GPU vs throughput per user (Pareto front)",
):
    """Every point (output tok/s per user, output tok/s per GPU), the Pareto front with error bars (each
    point's ``error_band_throughput_pct``) and the recommended points (``id`` of a point, ``goodput`` label)
    marked with a star."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    x = [float(p["output_tok_s_per_user"] or np.nan) for p in points]
    y = [float(p["output_tok_s_per_gpu"] or np.nan) for p in points]
    groups = sorted({tuple(p.get(k) for k in by or []) for p in points}, key=str)
    for i, group in enumerate(groups):
        idx = [k for k, p in enumerate(points) if tuple(p.get(k) for k in by or []) == group]
        label = _label(by or [], group) if by else "candidates"
        ax.scatter(
            [x[k] for k in idx],
            [y[k] for k in idx],
            s=18,
            alpha=0.5,
            marker=_MARKERS[i % len(_MARKERS)],
            label=label,
        )
    front = pareto_front(x, y)
    if front:
        err = [y[k] * (points[k].get("error_band_throughput_pct") or 0.0) / 100 for k in front]
        below = [min(e, y[k]) for e, k in zip(err, front, strict=True)]  # throughput does not go below 0
        ax.errorbar(
            [x[k] for k in front],
            [y[k] for k in front],
            yerr=[below, err],
            color="black",
            lw=1.5,
            capsize=3,
            label="Pareto front (+- expected error)",
        )
    by_id = {p.get("id"): k for k, p in enumerate(points)}
    for pick in recommended or []:
        k = by_id.get(pick.get("candidate"))
        if k is None:
            continue
        ax.scatter([x[k]], [y[k]], s=220, marker="*", color="tab:red", zorder=5)
        slo = " ".join(pick.get("goodput") or ["max throughput"])
        ax.annotate(
            f"{points[k].get('shape', '')}\n({slo})",
            (x[k], y[k]),
            fontsize=7,
            xytext=(6, 6),
            textcoords="offset points",
        )
    ax.set_xlabel("interactivity: output tokens/s per user (1000 / mean TPOT)")
    ax.set_ylabel("output tokens/s per GPU")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def step_breakdown(
    costs: dict[str, Any], path: str | Path | None = None, *, title: str = "Step time by category"
):
    """Stacked bars of step time (ms) by operator category; ``costs`` maps a label to a StepCost or a
    {category: seconds} dict (e.g. a prediction's ``step_time_breakdown`` shares)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels = list(costs)
    tables = [c.by_category() if hasattr(c, "by_category") else dict(c) for c in costs.values()]
    scale = 1000.0 if all(hasattr(c, "by_category") for c in costs.values()) else 100.0
    categories = sorted({k for t in tables for k in t}, key=lambda k: -sum(t.get(k, 0.0) for t in tables))
    bottom = np.zeros(len(labels))
    for cat in categories:
        values = np.array([t.get(cat, 0.0) * scale for t in tables])
        ax.bar(labels, values, bottom=bottom, label=cat)
        bottom += values
    ax.set_ylabel("time per step (ms)" if scale == 1000.0 else "share of step time (%)")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return _save(fig, path)


def roofline(cost, hw, path: str | Path | None = None, *, title: str | None = None):
    """Operators of one step on the GPU's roofline: achieved FLOP/s against arithmetic intensity."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bw = hw.hbm_bandwidth_Bps
    xs = np.logspace(-1, 4, 200)
    for precision in ("nvfp4", "fp8", "bf16"):
        peak = hw.peak_flops(precision)
        if peak:
            ax.plot(xs, np.minimum(xs * bw, peak) / 1e12, lw=1, label=f"roof {precision}")
    for op in cost.ops:
        if op.flops and op.bytes and op.time_s:
            ax.scatter(op.flops / op.bytes, op.flops / op.time_s / 1e12, s=20 + 400 * op.time_s / cost.gpu_s)
            ax.annotate(op.name, (op.flops / op.bytes, op.flops / op.time_s / 1e12), fontsize=6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("achieved TFLOP/s")
    ax.set_title(title or f"Roofline of one step on {hw.name} (marker area ~ time)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path):
    if path is not None:
        fig.savefig(path, dpi=120)
        _plt().close(fig)
    return fig


def sweep_plots(records, out_dir: Path, *, varied: list[str]) -> list[Path]:
    """Standard plots of a sweep: the Pareto front of every point, and throughput vs concurrency when
    concurrency varies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    by = [k for k in varied if k != "max_concurrency"]
    paths = []
    if "max_concurrency" in varied:
        paths.append(out_dir / "throughput_vs_concurrency.png")
        throughput_vs_concurrency(records, paths[-1], by=by)
    paths.append(out_dir / "pareto.png")
    pareto(records, paths[-1], by=by)
    return paths
