"""Summary statistics of prediction errors (shared by calibration, error bands and kernel validation), and the
fit's evaluation budgets, kept in this light module so the CLI can show them without importing scipy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: evaluations of the full fit, and of each cross-validation refit (warm-started from the full fit)
FIT_MAX_NFEV = 60
CV_MAX_NFEV = 25


def abs_error_stats(errors_pct: Sequence[float] | np.ndarray) -> dict:
    """Count, median and 90th percentile (numpy's linear interpolation) of absolute errors given in percent."""
    e = np.abs(np.asarray(errors_pct, dtype=float))
    return {
        "n": int(e.size),
        "median_abs_pct": float(np.median(e)),
        "p90_abs_pct": float(np.percentile(e, 90)),
    }
