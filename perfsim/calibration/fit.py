"""Fit the cost model's physical parameters to measurements; judge them by leave-one-group-out CV.

The fit minimizes, with ``scipy.optimize.least_squares`` over log-parameters (so every parameter stays
positive and within its physical bounds), the log-errors of the predictions against the measurements,
plus a weak prior pulling each parameter towards its spec-only default (a parameter the data do not
constrain stays physical). Cross-validation refits with one measurement group left out and predicts it,
which is the honest estimate of how well perfsim predicts a run it has not seen.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from perfsim.calibration.measurements import Measurement, ScenarioTable
from perfsim.calibration.stats import CV_MAX_NFEV, FIT_MAX_NFEV, abs_error_stats
from perfsim.costs.params import GEMM_EFF_PARAMS, CostParams, tie_gemm_efficiencies
from perfsim.errors import PerfsimError
from perfsim.serving.scenario import run_named_scenario
from perfsim.specs.model import load_model

#: the parameters fitted by default: one efficiency per kernel class the data exercise, the HBM fraction
#: for decode, the EP load imbalance, the API server's per-request latency and the gap between kernels
DEFAULT_FIT_PARAMS = (
    "gemm_eff_nvfp4",
    "gemm_eff_bf16",
    "attn_prefill_eff",
    "sparse_attn_eff",
    "hbm_eff",
    "ep_imbalance",
    "api_server_latency_s",
    "kernel_gap_s",
)


def default_fit_params(rows: Sequence[Measurement]) -> tuple[str, ...]:
    """``DEFAULT_FIT_PARAMS`` with the GEMM efficiency of every weight dtype the rows' checkpoint recipes use."""
    dtypes: set[str] = set()
    for model, precision in {(r.model, r.precision) for r in rows}:
        dtypes |= set(load_model(model, precision).recipe.module_dtypes.values())
    gemm = tuple(n for n in GEMM_EFF_PARAMS if n.removeprefix("gemm_eff_") in dtypes)
    return gemm + tuple(n for n in DEFAULT_FIT_PARAMS if n not in GEMM_EFF_PARAMS)


#: spread of the log-normal prior around the default (0.35 = within ~x1.4 at one sigma). The HBM streaming
#: fraction is known far better than in-engine kernel efficiencies: published streaming kernels reach 0.82-0.92
#: of the spec (DeepGEMM memory-bound shapes 0.82, FlashMLA decode 0.90 on H800), so its prior is +-10 %.
PRIOR_LOG_SIGMA = {
    "hbm_eff": 0.10,
    "ep_imbalance": 1.0,
    "cpu_step_s": 1.0,
    "kernel_gap_s": 1.0,
    "launch_overhead_s": 1.0,
    "api_server_latency_s": 1.5,
}
DEFAULT_PRIOR_LOG_SIGMA = 0.35
#: typical error of a published measurement (run-to-run noise, reading charts): 10 %
MEASUREMENT_LOG_SIGMA = 0.10
#: relative finite-difference step of the Jacobian (log space)
FD_STEP = 0.1
#: for parameters whose physical lower bound is 0, the log-space lower bound is this fraction of the upper one
POSITIVE_FLOOR = 1e-4
#: stop when parameters move < 0.1 % (log space) or the cost < 0.01 %: the simulation's own step noise is
#: larger than that, so tighter tolerances only spend evaluations
FIT_XTOL, FIT_FTOL = 1e-3, 1e-4
#: simulation processes of a calibration: scenarios are few, and more workers than this mostly add start-up
MAX_WORKERS = 4


def _predict_scenario(args: tuple) -> dict[str, float]:
    model, hw, precision, deployment, bench, param_values = args
    return run_named_scenario(model, hw, precision, deployment, bench, CostParams(**param_values))


class Evaluator:
    """Predicts every measurement row for given parameter values (one simulation per scenario)."""

    def __init__(self, rows: Sequence[Measurement], workers: int | None = None):
        self.rows = list(rows)
        self.table = ScenarioTable(self.rows)
        self.workers = workers if workers is not None else min(os.cpu_count() or 1, MAX_WORKERS)
        self._pool: ProcessPoolExecutor | None = None

    def predict(self, params: CostParams) -> np.ndarray:
        """Predicted value per row (NaN for rows whose scenario is unknown)."""
        values = params.model_dump()
        jobs = []
        keys = list(self.table.scenarios)
        for key in keys:
            r = self.rows[self.table.scenarios[key][0]]
            jobs.append((r.model, r.hw, r.precision, r.deployment, r.bench, values))
        if self.workers > 1 and len(jobs) > 1:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers)
            pending = self._pool.map(
                _predict_scenario, jobs, chunksize=max(1, len(jobs) // (4 * self.workers))
            )
        else:
            pending = map(_predict_scenario, jobs)
        results = []
        for key in keys:
            try:
                results.append(next(pending))
            except PerfsimError as exc:  # name the measurement row whose settings cannot be simulated
                raise PerfsimError(f"{self.rows[self.table.scenarios[key][0]].source}: {exc}") from None
        out = np.full(len(self.rows), np.nan)
        for key, result in zip(keys, results, strict=True):
            for i in self.table.scenarios[key]:
                out[i] = self.rows[i].predicted(result)
        return out

    def close(self) -> None:
        """Stop worker processes."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


@dataclass
class FitResult:
    """Fitted parameter values, their relative 1-sigma uncertainty, and the in-sample predictions."""

    names: tuple[str, ...]
    params: CostParams
    rel_sigma: dict[str, float]
    predictions: np.ndarray
    cost: float
    nfev: int
    success: bool
    message: str = ""


def log_bounds(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Log-space (low, high) bounds of parameters (a lower bound of 0 becomes ``POSITIVE_FLOOR`` x high)."""
    lo, hi = [], []
    for n in names:
        a, b = CostParams.bounds(n)
        lo.append(math.log(a if a > 0 else b * POSITIVE_FLOOR))
        hi.append(math.log(b))
    return np.array(lo), np.array(hi)


def fit(
    evaluator: Evaluator,
    *,
    names: Sequence[str] = DEFAULT_FIT_PARAMS,
    start: CostParams | None = None,
    rows_mask: np.ndarray | None = None,
    max_nfev: int = FIT_MAX_NFEV,
    prior: CostParams | None = None,
    prior_weight: float = 1.0,
) -> FitResult:
    """Least-squares fit of ``names`` on the rows selected by ``rows_mask`` (default: every known row).

    ``prior_weight`` scales the pull towards the defaults (0: plain least squares on the data).
    """
    names = tuple(names)
    prior = prior or CostParams()
    start = start or prior
    rows = evaluator.rows
    mask = np.array([r.unknown is None for r in rows]) if rows_mask is None else rows_mask
    measured = np.array([r.value for r in rows])
    lo, hi = log_bounds(names)
    # parameters whose default is 0 (off) take their log-space floor; the start stays strictly inside the bounds
    p0 = np.clip([math.log(getattr(prior, n)) if getattr(prior, n) > 0 else -math.inf for n in names], lo, hi)
    sig = np.array([PRIOR_LOG_SIGMA.get(n, DEFAULT_PRIOR_LOG_SIGMA) for n in names])
    inside = 1e-9 * (hi - lo)
    x0 = np.clip(
        [math.log(getattr(start, n)) if getattr(start, n) > 0 else -math.inf for n in names],
        lo + inside,
        hi - inside,
    )
    cache: dict[bytes, np.ndarray] = {}

    def params_of(x: np.ndarray) -> CostParams:
        fitted = start.model_copy(update={n: float(math.exp(v)) for n, v in zip(names, x, strict=True)})
        return tie_gemm_efficiencies(fitted, names)[0]

    def residuals(x: np.ndarray) -> np.ndarray:
        key = x.tobytes()
        if key not in cache:
            cache[key] = evaluator.predict(params_of(x))
        pred = cache[key]
        data = np.log(pred[mask] / measured[mask]) / MEASUREMENT_LOG_SIGMA
        return np.concatenate([data, prior_weight * (x - p0) / sig])

    from scipy.optimize import least_squares  # heavy: imported only when fitting

    # a discrete-event simulation is piecewise smooth: take finite-difference steps of 10 % so the
    # Jacobian sees the trend rather than the steps
    res = least_squares(
        residuals,
        x0,
        bounds=(lo, hi),
        method="trf",
        diff_step=FD_STEP,
        x_scale=1.0,
        max_nfev=max_nfev,
        xtol=FIT_XTOL,
        ftol=FIT_FTOL,
    )
    params = params_of(res.x)
    rel = relative_sigmas(res, int(mask.sum()), names)
    return FitResult(
        names=names,
        params=params,
        rel_sigma=rel,
        predictions=evaluator.predict(params),
        cost=float(res.cost),
        nfev=int(res.nfev),
        success=bool(res.success),
        message=str(res.message),
    )


def relative_sigmas(res, n_data: int, names: Sequence[str]) -> dict[str, float]:
    """1-sigma uncertainty of each log-space parameter of a ``least_squares`` result (relative, as a fraction).

    The first ``n_data`` residuals are data: the covariance is scaled by their reduced chi-square.
    """
    try:
        dof = max(1, n_data - len(names))
        chi2_per_dof = float(np.sum(res.fun[:n_data] ** 2) / dof)
        cov = np.linalg.pinv(res.jac.T @ res.jac) * chi2_per_dof
        return {n: float(math.sqrt(max(cov[i, i], 0.0))) for i, n in enumerate(names)}
    except (np.linalg.LinAlgError, ValueError):
        return {n: float("nan") for n in names}


@dataclass
class CrossValidation:
    """Leave-one-group-out predictions (each group predicted by a fit on the other groups)."""

    predictions: np.ndarray
    fold_params: dict[str, CostParams] = field(default_factory=dict)


def cross_validate(evaluator: Evaluator, full: FitResult, *, max_nfev: int = CV_MAX_NFEV) -> CrossValidation:
    """Refit without each group (warm start from the full fit) and predict the left-out group."""
    rows = evaluator.rows
    known = np.array([r.unknown is None for r in rows])
    groups = sorted({r.group for r in rows if r.unknown is None})
    out = np.full(len(rows), np.nan)
    folds: dict[str, CostParams] = {}
    for g in groups:
        in_group = np.array([r.group == g for r in rows])
        result = fit(
            evaluator, names=full.names, start=full.params, rows_mask=known & ~in_group, max_nfev=max_nfev
        )
        folds[g] = result.params
        out[in_group & known] = result.predictions[in_group & known]
    return CrossValidation(predictions=out, fold_params=folds)


def errors_pct(rows: Sequence[Measurement], predictions: np.ndarray) -> np.ndarray:
    """Signed relative error of each prediction in percent (NaN where not predicted)."""
    measured = np.array([r.value for r in rows])
    return 100.0 * (predictions - measured) / measured


def error_summary(
    rows: Sequence[Measurement], predictions: np.ndarray, by: str = "metric_class"
) -> dict[str, dict]:
    """Median and 90th-percentile absolute error (%) per metric class (or per ``group``)."""
    err = errors_pct(rows, predictions)
    out: dict[str, dict] = {}
    keys = sorted({getattr(r, by) for r in rows})
    for k in keys:
        e = [err[i] for i, r in enumerate(rows) if getattr(r, by) == k and not np.isnan(err[i])]
        if e:
            out[k] = abs_error_stats(e)
    return out
