"""Fit the cost model's physical parameters to measurements, with priors at their published values.

The fit minimizes, with ``scipy.optimize.least_squares`` over log-parameters (so every parameter stays
positive and within its physical bounds), the log-errors of the predictions against the measurements, plus
a log-normal prior pulling each parameter towards its spec-only value (a parameter the data do not constrain
stays physical). Keys are those of ``perfsim.calibration.param_space``: kernel efficiencies per GPU generation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from perfsim.calibration.evaluator import Evaluator, hardware_generation
from perfsim.calibration.measurement import Measurement
from perfsim.calibration.param_space import bounds_of, default_of, qualified, split_name
from perfsim.calibration.stats import FIT_MAX_NFEV, abs_error_stats
from perfsim.calibration.ties import GEMM_EFF_PARAMS, tie_kernel_efficiencies
from perfsim.costs.probe import probe_params
from perfsim.specs.model import load_model

#: the parameters fitted by default: one efficiency per kernel class the data exercise, the HBM fraction
#: for decode, the API server's latency and the gap between kernels. Each of them is exercised by more than
#: one measurement group.
#: the weight-only (W4A16) kernel's parameters, exercised only by rows whose 4-bit weights run weight-only
WEIGHT_ONLY_PARAMS = ("gemm_eff_weight_only", "weight_dequant_per_sm_cycle", "weight_only_gemm_latency_s")
DEFAULT_FIT_PARAMS = (
    "gemm_eff_nvfp4",
    "gemm_eff_fp8",
    "gemm_eff_bf16",
    "attn_prefill_eff",
    "sparse_prefill_eff",
    "hbm_eff",
    "gemm_mem_serial",
    *WEIGHT_ONLY_PARAMS,
    "expert_popularity_cv",
    "api_server_latency_s",
    "kernel_gap_s",
    "cpu_step_s",
    "cpu_per_request_s",
)
#: spread of the log-normal prior around the published value (0.35 = within ~x1.4 at one sigma). The HBM
#: streaming fraction is known far better than in-engine kernel efficiencies (published streaming kernels reach
#: 0.82-0.92 of the spec), so its prior is +-10 %; engine latencies are known to a factor of about 2-3.
PRIOR_LOG_SIGMA = {
    "hbm_eff": 0.10,
    "cpu_step_s": 1.0,
    "kernel_gap_s": 0.7,
    "launch_overhead_s": 1.0,
    "api_server_latency_s": 0.7,
    "mem_ramp_s": 1.0,
    "expert_popularity_cv": 0.7,
    "gemm_mem_serial": 0.7,
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


#: a parameter is fitted by default only when rows of at least this many measurement groups exercise it, so
#: that no value is fitted on one group alone
MIN_GROUPS_PER_PARAM = 2


def exercised(name: str, row: Measurement) -> bool:
    """Whether a row's scenario depends on parameter ``name`` (for the parameters only some scenarios use:
    the GEMM efficiency of a weight dtype, sparse attention, expert-parallel routing; the rest always)."""
    model = load_model(row.model, row.precision).with_module_dtypes(dict(row.module_dtypes))
    if row.kind == "kernel":
        return name in probe_params(row.kernel_op, model)
    if name in GEMM_EFF_PARAMS:
        return name.removeprefix("gemm_eff_") in compute_dtypes(row, set(model.recipe.module_dtypes.values()))
    if name.startswith("sparse_"):
        return model.has_sparse_attention
    if name == "expert_popularity_cv":
        return model.arch.moe is not None  # EP imbalance and the experts a decode step reads
    if name in WEIGHT_ONLY_PARAMS:
        return runs_weight_only(row, set(model.recipe.module_dtypes.values()))
    return True


def runs_weight_only(row: Measurement, weight_dtypes: set[str]) -> bool:
    """Whether some of a row's 4-bit weights run weight-only (dequantized to BF16) on its GPU."""
    generation = hardware_generation(row.hw)
    if generation != "blackwell":
        return bool(weight_dtypes & {"nvfp4", "mxfp4"})
    return "mxfp4" in weight_dtypes and row.deployment.get("mxfp4_moe_activation") != "mxfp8"


def compute_dtypes(row: Measurement, weight_dtypes: set[str]) -> set[str]:
    """The tensor-core precisions a row's GEMMs run at: MXFP4 at FP8 with MXFP8 activations on Blackwell, else
    BF16 (weight-only); NVFP4 and FP8 at their own rate where the GPU has it, else BF16."""
    generation = hardware_generation(row.hw)
    out = set()
    for d in weight_dtypes:
        if d == "mxfp4":
            mxfp8 = row.deployment.get("mxfp4_moe_activation") == "mxfp8" and generation == "blackwell"
            out.add("fp8" if mxfp8 else "bf16")
        elif d == "nvfp4" and generation != "blackwell":
            out.add("bf16")  # Hopper runs NVFP4 checkpoints weight-only
        else:
            out.add(d)
    return out


def identifiable(names: Sequence[str], rows: Sequence[Measurement]) -> tuple[str, ...]:
    """The keys of ``names`` that rows of at least ``MIN_GROUPS_PER_PARAM`` groups exercise (a kernel key on its
    own GPU generation): a validation fold fits only what its training rows can say something about."""
    known = [r for r in rows if r.unknown is None]
    out = []
    for key in names:
        base, generation = split_name(key)
        scope = [r for r in known if not generation or hardware_generation(r.hw) == generation]
        if len({r.group for r in scope if exercised(base, r)}) >= MIN_GROUPS_PER_PARAM:
            out.append(key)
    return tuple(out)


def default_fit_params(rows: Sequence[Measurement]) -> tuple[str, ...]:
    """``DEFAULT_FIT_PARAMS`` (the GEMM efficiency of every weight dtype the rows' checkpoints use) that rows of
    at least ``MIN_GROUPS_PER_PARAM`` groups of a GPU generation exercise, kernel parameters once per generation."""
    known = [r for r in rows if r.unknown is None]
    keys: list[str] = []
    for name in (*GEMM_EFF_PARAMS, *(n for n in DEFAULT_FIT_PARAMS if n not in GEMM_EFF_PARAMS)):
        for generation in sorted({hardware_generation(r.hw) for r in known}):
            key = qualified(name, generation)
            scope = [r for r in known if key == name or hardware_generation(r.hw) == generation]
            groups = {r.group for r in scope if exercised(name, r)}
            if len(groups) >= MIN_GROUPS_PER_PARAM and key not in keys:
                keys.append(key)
    return tuple(keys)


@dataclass
class FitResult:
    """Fitted values (keys of ``param_space``), their relative 1-sigma uncertainty, the in-sample predictions."""

    names: tuple[str, ...]
    values: dict[str, float]
    rel_sigma: dict[str, float]
    predictions: np.ndarray
    cost: float
    nfev: int
    success: bool
    message: str = ""
    derived: dict[str, str] = field(default_factory=dict)


def log_bounds(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Log-space (low, high) bounds of keys (a lower bound of 0 becomes ``POSITIVE_FLOOR`` x high)."""
    lo, hi = [], []
    for n in names:
        a, b = bounds_of(n)
        lo.append(math.log(a if a > 0 else b * POSITIVE_FLOOR))
        hi.append(math.log(b))
    return np.array(lo), np.array(hi)


def prior_sigma(name: str) -> float:
    """Log-space width of a key's prior."""
    return PRIOR_LOG_SIGMA.get(split_name(name)[0], DEFAULT_PRIOR_LOG_SIGMA)


def fit(
    evaluator: Evaluator,
    *,
    names: Sequence[str] = DEFAULT_FIT_PARAMS,
    start: Mapping[str, float] | None = None,
    rows_mask: np.ndarray | None = None,
    max_nfev: int = FIT_MAX_NFEV,
    prior_weight: float = 1.0,
    fixed: Mapping[str, float] | None = None,
    settings: Mapping[str, int] | None = None,
) -> FitResult:
    """Least-squares fit of the keys ``names`` on the rows selected by ``rows_mask`` (default: every known row).

    ``start``: where the fit starts (default: the priors, the published values); ``prior_weight`` scales the
    pull towards the priors (0: plain least squares on the data); ``fixed``: values held constant (a base
    profile's, e.g. the kernel efficiencies another engine version's profile fitted); ``settings``: fitted
    values of the rows' unknown run settings (``perfsim.calibration.run_settings``).
    """
    fixed = dict(fixed or {})
    names = tuple(names)
    rows = evaluator.rows
    mask = np.array([r.unknown is None for r in rows]) if rows_mask is None else rows_mask
    measured = np.array([r.value for r in rows])
    lo, hi = log_bounds(names)
    prior = np.array([default_of(n) for n in names])
    # parameters whose default is 0 (off) take their log-space floor; the start stays strictly inside the bounds
    p0 = np.clip(np.log(np.where(prior > 0, prior, np.exp(lo))), lo, hi)
    sig = np.array([prior_sigma(n) for n in names])
    inside = 1e-9 * (hi - lo)
    first = np.array([(start or {}).get(n, default_of(n)) for n in names])
    x0 = np.clip(np.log(np.where(first > 0, first, np.exp(lo))), lo + inside, hi - inside)
    cache: dict[bytes, np.ndarray] = {}

    def values_of(x: np.ndarray) -> dict[str, float]:
        fitted = {n: float(math.exp(v)) for n, v in zip(names, x, strict=True)}
        return {**fixed, **tie_kernel_efficiencies(fitted, keep=fixed)[0]}

    def residuals(x: np.ndarray) -> np.ndarray:
        key = x.tobytes()
        if key not in cache:
            cache[key] = evaluator.predict(values_of(x), mask=mask, settings=settings)
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
    values, derived = tie_kernel_efficiencies(
        {n: float(math.exp(v)) for n, v in zip(names, res.x, strict=True)}, keep=fixed
    )
    return FitResult(
        names=names,
        values=values,
        rel_sigma=relative_sigmas(res, int(mask.sum()), names),
        predictions=evaluator.predict({**fixed, **values}, mask=mask, settings=settings),
        cost=float(res.cost),
        nfev=int(res.nfev),
        success=bool(res.success),
        message=str(res.message),
        derived=derived,
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


def errors_pct(rows: Sequence[Measurement], predictions: np.ndarray) -> np.ndarray:
    """Signed relative error of each prediction in percent (NaN where not predicted)."""
    measured = np.array([r.value for r in rows])
    return 100.0 * (predictions - measured) / measured


def error_summary_by_hw_and_class(rows: Sequence[Measurement], predictions: np.ndarray) -> dict[str, dict]:
    """``error_summary`` per metric class within each GPU: {hw: {metric class: stats}}."""
    out: dict[str, dict] = {}
    for hw in sorted({r.hw for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.hw == hw]
        out[hw] = error_summary([rows[i] for i in idx], np.asarray(predictions)[idx])
    return out


def error_summary(
    rows: Sequence[Measurement], predictions: np.ndarray, by: str = "metric_class"
) -> dict[str, dict]:
    """Median and 90th-percentile absolute error (%) per metric class (or per ``group``, ``hw``, ...)."""
    err = errors_pct(rows, predictions)
    out: dict[str, dict] = {}
    keys = sorted({getattr(r, by) for r in rows})
    for k in keys:
        e = [err[i] for i, r in enumerate(rows) if getattr(r, by) == k and not np.isnan(err[i])]
        if e:
            out[k] = abs_error_stats(e)
    return out
