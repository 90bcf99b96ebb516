"""Fit the physics and the unknown run settings of measurement rows together
(``perfsim.calibration.run_settings`` says what a run-setting unknown is)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from perfsim.calibration.fit import FitResult, fit, identifiable
from perfsim.calibration.run_settings import choose_settings, unknowns_of

#: how many times the pick of the settings and the physics fit may alternate before the calibration stops
MAX_ROUNDS = 3


def fit_with_settings(
    evaluator: Any,
    *,
    names: Sequence[str],
    rows_mask: np.ndarray | None = None,
    max_nfev: int,
    fixed: Mapping[str, float] | None = None,
) -> tuple[FitResult, dict[str, int]]:
    """The physics fit (from the priors) and the unknown settings of the rows in ``rows_mask``.

    The first pick uses the physics fitted on the rows whose settings are all stated, so the physics cannot
    absorb what an unknown setting does; then the physics is refitted on every row with the pick, and pick and
    fit alternate until the pick holds (at most ``MAX_ROUNDS`` picks)."""
    fixed = dict(fixed or {})
    rows = evaluator.rows
    mask = np.array([r.unknown is None for r in rows]) if rows_mask is None else np.asarray(rows_mask)
    settings: dict[str, int] = {}
    if unknowns_of(rows, mask):
        stated = mask & np.array([r.fitted_setting is None for r in rows])
        trainable = identifiable(names, [r for r, s in zip(rows, stated, strict=True) if s])
        if stated.any() and trainable:
            physics = fit(evaluator, names=trainable, rows_mask=stated, max_nfev=max_nfev, fixed=fixed)
            settings = choose_settings(evaluator, {**fixed, **physics.values}, mask)
    result = fit(evaluator, names=names, rows_mask=mask, max_nfev=max_nfev, fixed=fixed, settings=settings)
    for _ in range(MAX_ROUNDS):
        chosen = choose_settings(evaluator, {**fixed, **result.values}, mask, settings)
        if chosen == settings:
            break
        settings = chosen
        result = fit(
            evaluator, names=names, rows_mask=mask, max_nfev=max_nfev, fixed=fixed, settings=settings
        )
    return result, settings
