"""Summary statistics of prediction errors, shared by calibration, error bands and kernel validation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def abs_error_stats(errors_pct: Sequence[float] | np.ndarray) -> dict:
    """Count, median and 90th percentile (numpy's linear interpolation) of absolute errors given in percent."""
    e = np.abs(np.asarray(errors_pct, dtype=float))
    return {"n": int(e.size), "median_abs_pct": float(np.median(e)), "p90_abs_pct": float(np.percentile(e, 90))}
