"""Honest validation: predict each group of rows (or each GPU's rows) from a fit that never saw it.

Every fold starts from the priors (the published values), not from the full fit, and gets the full fit's
evaluation budget, so a held-out row's error is what perfsim would make on a run it has not seen. Folds are
whole measurement groups (one curve of one source) or whole GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from perfsim.calibration.evaluator import Evaluator
from perfsim.calibration.fit import identifiable
from perfsim.calibration.settings_fit import fit_with_settings
from perfsim.calibration.stats import FIT_MAX_NFEV

#: what folds can hold out: a measurement group, a GPU kind, or a tensor-parallel size
FOLD_KEYS = ("group", "hw", "tp")


@dataclass
class CrossValidation:
    """Held-out predictions of every row, and per fold the fitted values and how the fit ended."""

    by: str
    predictions: np.ndarray
    fold_values: dict[str, dict[str, float]] = field(default_factory=dict)
    fold_nfev: dict[str, int] = field(default_factory=dict)
    fold_converged: dict[str, bool] = field(default_factory=dict)
    #: each fold's fitted unknown run settings (none where its training rows have none of their rows)
    fold_settings: dict[str, dict[str, int]] = field(default_factory=dict)


def cross_validate(
    evaluator: Evaluator,
    names: Sequence[str],
    *,
    by: str = "group",
    max_nfev: int = FIT_MAX_NFEV,
    fixed: Mapping[str, float] | None = None,
    only: Sequence[str] | None = None,
) -> CrossValidation:
    """Refit from the priors without each fold (``by``: 'group', 'hw' or 'tp') and predict the held-out rows.

    A fold whose held-out rows leave no row to fit on predicts them with the priors (spec-only); unknown run
    settings are picked on the training rows only (a held-out row whose setting no training row shares runs at
    the stated default); ``fixed``
    values (a base profile's) hold in every fold. ``only`` runs just the named folds (the other rows stay NaN).
    """
    fixed = dict(fixed or {})
    if by not in FOLD_KEYS:
        raise ValueError(f"folds by {by!r}; allowed: {', '.join(FOLD_KEYS)}")
    rows = evaluator.rows
    known = np.array([r.unknown is None for r in rows])
    out = np.full(len(rows), np.nan)
    cv = CrossValidation(by=by, predictions=out)
    folds = sorted({str(getattr(r, by)) for r in rows if r.unknown is None})
    if only is not None:
        unknown_folds = sorted(set(only) - set(folds))
        if unknown_folds:
            raise ValueError(f"no {by} fold {', '.join(unknown_folds)}; the data have {', '.join(folds)}")
        folds = [f for f in folds if f in only]
    for fold in folds:
        held_out = known & np.array([str(getattr(r, by)) == fold for r in rows])
        training = known & ~held_out
        if not training.any():
            out[held_out] = evaluator.predict(fixed, mask=held_out)[held_out]
            cv.fold_values[fold], cv.fold_nfev[fold], cv.fold_converged[fold] = {}, 0, True
            continue
        trainable = identifiable(names, [r for r, t in zip(rows, training, strict=True) if t])
        if not trainable:
            out[held_out] = evaluator.predict(fixed, mask=held_out)[held_out]
            cv.fold_values[fold], cv.fold_nfev[fold], cv.fold_converged[fold] = {}, 0, True
            continue
        result, settings = fit_with_settings(
            evaluator, names=trainable, rows_mask=training, max_nfev=max_nfev, fixed=fixed
        )
        predicted = evaluator.predict({**fixed, **result.values}, mask=held_out, settings=settings)
        out[held_out] = predicted[held_out]
        cv.fold_values[fold] = result.values
        cv.fold_settings[fold] = settings
        cv.fold_nfev[fold] = result.nfev
        cv.fold_converged[fold] = result.success
    return cv
