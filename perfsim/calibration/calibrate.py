"""Calibrate: fit parameters, cross-validate, and assemble the profile with its data, errors and domain."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from perfsim.calibration.fit import (
    DEFAULT_FIT_PARAMS,
    FIT_MAX_NFEV,
    MEASUREMENT_LOG_SIGMA,
    CrossValidation,
    Evaluator,
    FitResult,
    cross_validate,
    error_summary,
    errors_pct,
    fit,
)
from perfsim.calibration.measurements import Measurement
from perfsim.calibration.profiles import parallel_kind
from perfsim.costs.params import CostParams, tie_gemm_efficiencies
from perfsim.specs.deployment import VLLM_VERSION
from perfsim.specs.model import load_model


def _parallel_kind(dep: dict[str, Any]) -> str:
    return parallel_kind(
        dp=dep.get("data_parallel_size", 1),
        expert_parallel=bool(dep.get("enable_expert_parallel")),
        disaggregated=bool(dep.get("num_prefill_instances")),
    )


def _canonical_model(name: str) -> str:
    return load_model(name, "bf16").name


def domain_of(rows: Sequence[Measurement]) -> dict[str, Any]:
    """What the calibration data cover (hardware, models, precisions, parallelism, length and load ranges)."""
    benches = [r.bench for r in rows if r.unknown is None and r.bench is not None]
    known = [r for r in rows if r.unknown is None]
    isl = [int(b["random_input_len"]) for b in benches]
    osl = [int(b["random_output_len"]) for b in benches]
    conc = [int(b["max_concurrency"]) for b in benches if b.get("max_concurrency")]
    return {
        "hardware": sorted({r.hw for r in known}),
        "models": sorted({_canonical_model(r.model) for r in known}),
        "precisions": sorted({r.precision for r in known}),
        "parallel": sorted({_parallel_kind(r.deployment) for r in known}),
        "isl": [min(isl), max(isl)] if isl else None,
        "osl": [min(osl), max(osl)] if osl else None,
        "concurrency": [min(conc), max(conc)] if conc else None,
        "mtp": any(r.deployment.get("num_speculative_tokens") for r in known),
        "disaggregated": any(r.deployment.get("num_prefill_instances") for r in known),
    }


def run_calibration(
    rows: Sequence[Measurement],
    *,
    names: Sequence[str] = DEFAULT_FIT_PARAMS,
    cv: bool = True,
    workers: int | None = None,
    max_nfev: int = FIT_MAX_NFEV,
    progress=print,
) -> tuple[FitResult, CrossValidation | None, np.ndarray]:
    """Fit on all known rows, then leave-one-group-out CV. Returns (fit, cv, spec-only predictions)."""
    evaluator = Evaluator(rows, workers=workers)
    try:
        spec_only = evaluator.predict(CostParams())
        progress(f"spec-only: {_fmt(error_summary(rows, spec_only))}")
        result = fit(evaluator, names=names, max_nfev=max_nfev)
        progress(f"fit ({result.nfev} evaluations): {_fmt(error_summary(rows, result.predictions))}")
        if not result.success:
            progress(
                f"warning: the fit stopped before converging ({result.message}); raise --max-nfev to continue"
            )
        cvres = None
        if cv:
            cvres = cross_validate(evaluator, result)
            progress(f"leave-one-group-out: {_fmt(error_summary(rows, cvres.predictions))}")
    finally:
        evaluator.close()
    return result, cvres, spec_only


def _fmt(summary: dict[str, dict]) -> str:
    return ", ".join(
        f"{k} {v['median_abs_pct']:.1f}% (p90 {v['p90_abs_pct']:.1f}%)" for k, v in summary.items()
    )


def _round(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}") if math.isfinite(x) else x


def build_profile(
    name: str,
    rows: Sequence[Measurement],
    result: FitResult,
    cvres: CrossValidation | None,
    spec_only: np.ndarray,
    files: Sequence[str],
) -> dict[str, Any]:
    """The profile dict written to YAML."""
    defaults = CostParams()
    params = {}
    for n in result.names:
        params[n] = {
            "value": _round(getattr(result.params, n)),
            "rel_sigma": _round(result.rel_sigma.get(n, math.nan), 3),
            "default": getattr(defaults, n),
            "unit": CostParams.unit(n),
            "description": CostParams.model_fields[n].description,
        }
    for n, why in tie_gemm_efficiencies(result.params, result.names)[1].items():
        params[n] = {
            "value": _round(getattr(result.params, n)),
            "derived": why,
            "default": getattr(defaults, n),
            "unit": CostParams.unit(n),
            "description": CostParams.model_fields[n].description,
        }
    groups = sorted({r.group for r in rows})
    profile: dict[str, Any] = {
        "name": name,
        "engine": f"vllm {VLLM_VERSION}",
        "fitted": dt.date.today().isoformat(),
        "data": [str(f) for f in files],
        "rows": {
            "fitted": int(sum(r.unknown is None for r in rows)),
            "unknown": [f"{r.source} {r.label}: {r.unknown}" for r in rows if r.unknown],
            "groups": groups,
        },
        "method": (
            f"scipy.optimize.least_squares on log(predicted/measured) ({MEASUREMENT_LOG_SIGMA:.0%} measurement "
            "sigma) with log-normal priors around the spec-only defaults; leave-one-group-out cross-validation"
        ),
        "domain": domain_of(rows),
        "params": params,
        "spec_only_error": error_summary(rows, spec_only),
        "fit_error": error_summary(rows, result.predictions),
    }
    if cvres is not None:
        profile["cv_error"] = error_summary(rows, cvres.predictions)
        profile["cv_error_by_group"] = error_summary(rows, cvres.predictions, by="group")
        err = errors_pct(rows, cvres.predictions)
        profile["cv_residuals"] = [
            {
                "source": r.source,
                "group": r.group,
                "model": _canonical_model(r.model),
                "parallel": _parallel_kind(r.deployment),
                "metric": r.metric,
                "metric_class": r.metric_class,
                "measured": r.value,
                "predicted": _round(float(cvres.predictions[i]), 6),
                "error_pct": _round(float(err[i]), 4),
            }
            for i, r in enumerate(rows)
            if r.unknown is None
        ]
        profile["fold_params"] = {
            g: {n: _round(getattr(p, n), 6) for n in result.names} for g, p in cvres.fold_params.items()
        }
    return profile
