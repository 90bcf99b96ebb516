"""The accuracy regression gate: held-out errors per measurement group may not grow, and no row may vanish.

In the style of AIConfigurator's regression gate: ``perfsim calibrate`` stores a baseline in the profile (the
sha256 of every measurement file, the commit, the list of rows it predicted, and per group and metric class the
median and 90th percentile of the leave-one-group-out errors). ``gate_check`` then compares a fresh run of the
same folds with that baseline and fails when

* a measurement file changed (the baseline no longer describes the data: refit);
* a row the baseline predicted is missing or no longer predicted (a renamed group, a reader that drops rows);
* any group's (or metric class's) median or p90 absolute error grew by more than the tolerance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perfsim.calibration.fit import errors_pct
from perfsim.calibration.measurement import Measurement
from perfsim.calibration.stats import abs_error_stats
from perfsim.paths import data_dir

#: how far (percentage points) a median or p90 absolute error may grow before the gate fails: the simulation's
#: own seeded noise and the fit's tolerance move held-out errors by well under a point
GATE_TOLERANCE_PTS = 2.0


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (a bundled measurement file may be named as ``measurements/<name>``)."""
    p = Path(path)
    if not p.exists():
        p = data_dir("measurements") / p.name
    return hashlib.sha256(p.read_bytes()).hexdigest()


def row_id(row: Measurement) -> str:
    """A row's identity in the gate: its file and line, group and metric."""
    return f"{row.source} {row.group} {row.metric}"


def _stats_by(rows: Sequence[Measurement], err: np.ndarray, key: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for k in sorted({str(getattr(r, key)) for r in rows}):
        e = [err[i] for i, r in enumerate(rows) if str(getattr(r, key)) == k and np.isfinite(err[i])]
        if e:
            s = abs_error_stats(e)
            out[k] = {
                "n": s["n"],
                "median_abs_pct": round(s["median_abs_pct"], 3),
                "p90_abs_pct": round(s["p90_abs_pct"], 3),
            }
    return out


def error_table(rows: Sequence[Measurement], predictions: np.ndarray) -> dict[str, dict[str, dict[str, Any]]]:
    """Median / p90 absolute error (%) per group x metric class and per metric class."""
    err = errors_pct(rows, predictions)
    by_group: dict[str, dict[str, Any]] = {}
    for group in sorted({r.group for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.group == group]
        by_group[group] = _stats_by([rows[i] for i in idx], err[idx], "metric_class")
    return {"by_group": by_group, "by_metric_class": _stats_by(rows, err, "metric_class")}


def gate_baseline(
    rows: Sequence[Measurement],
    predictions: np.ndarray,
    files: Sequence[str | Path],
    *,
    commit: str = "",
    by: str = "group",
) -> dict[str, Any]:
    """The gate's baseline: data hashes, commit, predicted rows and held-out error statistics of the folds
    ``by`` ('group': the profile's ``fold_params``; 'hw': its ``gpu_out_folds``)."""
    predicted = [row_id(r) for i, r in enumerate(rows) if r.unknown is None and np.isfinite(predictions[i])]
    return {
        "by": by,
        "tolerance_pts": GATE_TOLERANCE_PTS,
        "commit": commit,
        "data_sha256": {Path(f).name: file_sha256(f) for f in files},
        "rows": predicted,
        **error_table(rows, predictions),
    }


def gate_check(
    baseline: Mapping[str, Any],
    rows: Sequence[Measurement],
    predictions: np.ndarray,
    files: Sequence[str | Path],
) -> list[str]:
    """Every way a fresh held-out run is worse than the baseline (empty: the gate passes)."""
    failures: list[str] = []
    hashes = {Path(f).name: file_sha256(f) for f in files}
    for name, digest in (baseline.get("data_sha256") or {}).items():
        if hashes.get(name) != digest:
            failures.append(f"data {name} changed since the baseline (or is missing): refit the profile")
    now = {row_id(r) for i, r in enumerate(rows) if r.unknown is None and np.isfinite(predictions[i])}
    lost = [r for r in baseline.get("rows", []) if r not in now]
    failures += [f"row no longer predicted: {r}" for r in lost]
    tol = float(baseline.get("tolerance_pts", GATE_TOLERANCE_PTS))
    fresh = error_table(rows, predictions)
    pairs = [
        (f"group {g} {cls}", stats, fresh["by_group"].get(g, {}).get(cls))
        for g, classes in (baseline.get("by_group") or {}).items()
        for cls, stats in classes.items()
    ]
    pairs += [
        (cls, stats, fresh["by_metric_class"].get(cls))
        for cls, stats in (baseline.get("by_metric_class") or {}).items()
    ]
    for what, before, after in pairs:
        if after is None:
            failures.append(f"{what}: no longer predicted")
            continue
        for stat in ("median_abs_pct", "p90_abs_pct"):
            if after[stat] > before[stat] + tol:
                failures.append(f"{what}: {stat} {after[stat]:.1f}% > baseline {before[stat]:.1f}% + {tol:g}")
    return failures
