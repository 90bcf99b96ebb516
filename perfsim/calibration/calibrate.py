"""Calibrate: fit, cross-validate honestly, and assemble the profile with its data, errors and domain."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perfsim.calibration.crossval import CrossValidation, cross_validate
from perfsim.calibration.evaluator import Evaluator, hardware_generation
from perfsim.calibration.fit import (
    MEASUREMENT_LOG_SIGMA,
    FitResult,
    error_summary,
    error_summary_by_hw_and_class,
    errors_pct,
)
from perfsim.calibration.gate import gate_baseline
from perfsim.calibration.measurement import Measurement, parallel_kind
from perfsim.calibration.param_space import default_of, split_name
from perfsim.calibration.run_settings import settings_report, unknowns_of
from perfsim.calibration.settings_fit import fit_with_settings
from perfsim.calibration.stats import FIT_MAX_NFEV
from perfsim.costs.params import CostParams
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
    known = [r for r in rows if r.unknown is None]
    serving = [r for r in known if r.is_serving and r.bench is not None]
    isl = [int(r.bench["random_input_len"]) for r in serving if r.bench]
    osl = [int(r.bench["random_output_len"]) for r in serving if r.bench]
    conc = [int(r.bench["max_concurrency"]) for r in serving if r.bench and r.bench.get("max_concurrency")]
    return {
        "hardware": sorted({r.hw for r in known}),
        "generations": sorted({hardware_generation(r.hw) for r in known}),
        "models": sorted({_canonical_model(r.model) for r in known}),
        "precisions": sorted({r.precision for r in known}),
        "parallel": sorted({_parallel_kind(r.deployment) for r in serving}),
        "isl": [min(isl), max(isl)] if isl else None,
        "osl": [min(osl), max(osl)] if osl else None,
        "concurrency": [min(conc), max(conc)] if conc else None,
        "mtp": any(r.deployment.get("num_speculative_tokens") for r in known),
        "disaggregated": any(r.deployment.get("num_prefill_instances") for r in known),
        **parallel_domain(serving),
    }


def parallel_domain(serving: Sequence[Measurement]) -> dict[str, Any]:
    """The engine settings the serving rows cover: TP, DP and EP sizes, KV-cache dtypes, eager mode, arrival
    rates (None: every row sends at once) and length range ratios."""

    def sizes(key: str) -> list[int]:
        return sorted({int(r.deployment.get(key) or 1) for r in serving})

    ep = sorted(
        {
            int(r.deployment.get("tensor_parallel_size") or 1)
            * int(r.deployment.get("data_parallel_size") or 1)
            if r.deployment.get("enable_expert_parallel")
            else 1
            for r in serving
        }
    )
    rates = [
        float(r.bench["request_rate"])
        for r in serving
        if r.bench and r.bench.get("request_rate") not in (None, "inf")
    ]
    rates = [x for x in rates if math.isfinite(x)]
    ratios = [float(r.bench.get("random_range_ratio") or 0.0) for r in serving if r.bench]
    return {
        "tensor_parallel_sizes": sizes("tensor_parallel_size"),
        "data_parallel_sizes": sizes("data_parallel_size"),
        "expert_parallel_sizes": ep,
        "kv_cache_dtypes": sorted({str(r.deployment.get("kv_cache_dtype") or "auto") for r in serving}),
        "enforce_eager": any(r.deployment.get("enforce_eager") for r in serving),
        "request_rate": [min(rates), max(rates)] if rates else None,
        "range_ratio": [min(ratios), max(ratios)] if ratios else None,
    }


@dataclass
class Calibration:
    """A calibration run: spec-only predictions, the full fit and the held-out predictions by group and GPU."""

    rows: list[Measurement]
    spec_only: np.ndarray
    result: FitResult
    by_group: CrossValidation | None
    by_hw: CrossValidation | None
    by_tp: CrossValidation | None = None
    base: str = ""
    base_values: dict[str, float] = field(default_factory=dict)
    #: fitted values of the rows' unknown run settings (``perfsim.calibration.run_settings``)
    settings: dict[str, int] = field(default_factory=dict)


def run_calibration(
    rows: Sequence[Measurement],
    *,
    names: Sequence[str],
    folds: Sequence[str] = ("group", "hw"),
    workers: int | None = None,
    max_nfev: int = FIT_MAX_NFEV,
    progress: Callable[[str], object] = print,
    base: str = "",
    base_values: Mapping[str, float] | None = None,
) -> Calibration:
    """Fit on all known rows, then validate by each of ``folds`` ('group', 'hw', 'tp'), every fold from the
    priors. ``base_values`` (profile ``base``) are held fixed: the fit adds to them."""
    rows = list(rows)
    fixed = dict(base_values or {})
    evaluator = Evaluator(rows, workers=workers)
    cvs: dict[str, CrossValidation] = {}
    try:
        spec_only = evaluator.predict({})
        progress(f"spec-only: {_fmt(error_summary(rows, spec_only))}")
        if fixed:
            progress(f"base {base}: {_fmt(error_summary(rows, evaluator.predict(fixed)))}")
        result, settings = fit_with_settings(evaluator, names=names, max_nfev=max_nfev, fixed=fixed)
        progress(f"fit ({result.nfev} evaluations): {_fmt(error_summary(rows, result.predictions))}")
        for name, value in settings.items():
            progress(f"run setting {name}: {value}")
        if not result.success:
            progress(
                f"warning: the fit stopped before converging ({result.message}); raise --max-nfev to continue"
            )
        for by in folds:
            cvs[by] = cross_validate(evaluator, names, by=by, max_nfev=max_nfev, fixed=fixed)
            progress(f"leave-one-{FOLD_NAMES[by]}-out: {_fmt(error_summary(rows, cvs[by].predictions))}")
    finally:
        evaluator.close()
    return Calibration(
        rows=rows,
        spec_only=spec_only,
        result=result,
        by_group=cvs.get("group"),
        by_hw=cvs.get("hw"),
        by_tp=cvs.get("tp"),
        base=base,
        base_values=fixed,
        settings=settings,
    )


#: how progress lines and profile keys name each fold kind
FOLD_NAMES = {"group": "group", "hw": "GPU", "tp": "TP-size"}


def _fmt(summary: dict[str, dict]) -> str:
    return ", ".join(
        f"{k} {v['median_abs_pct']:.1f}% (p90 {v['p90_abs_pct']:.1f}%)" for k, v in summary.items()
    )


def _round(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}") if math.isfinite(x) else x


def _param_entry(key: str, value: float, **extra: Any) -> dict[str, Any]:
    base, generation = split_name(key)
    entry: dict[str, Any] = {"value": _round(value), **extra, "default": _round(default_of(key))}
    entry.update(unit=CostParams.unit(base), scope=CostParams.scope(base))
    if generation:
        entry["generation"] = generation
    entry["description"] = CostParams.model_fields[base].description
    return entry


def _residuals(rows: Sequence[Measurement], predictions: np.ndarray) -> list[dict[str, Any]]:
    err = errors_pct(rows, predictions)
    return [
        {
            "source": r.source,
            "group": r.group,
            "hw": r.hw,
            "kind": r.kind,
            "model": _canonical_model(r.model),
            "parallel": _parallel_kind(r.deployment),
            "metric": r.metric,
            "metric_class": r.metric_class,
            "measured": r.value,
            "predicted": _round(float(predictions[i]), 6),
            "error_pct": _round(float(err[i]), 4),
        }
        for i, r in enumerate(rows)
        if r.unknown is None
    ]


def _folds(cv: CrossValidation) -> dict[str, Any]:
    return {
        fold: {
            "values": {k: _round(v, 6) for k, v in cv.fold_values[fold].items()},
            "evaluations": cv.fold_nfev[fold],
            "converged": cv.fold_converged[fold],
            **({"settings": dict(cv.fold_settings[fold])} if cv.fold_settings.get(fold) else {}),
        }
        for fold in cv.fold_values
    }


def build_profile(name: str, cal: Calibration, files: Sequence[str], *, commit: str = "") -> dict[str, Any]:
    """The profile dict written to YAML."""
    rows, result = cal.rows, cal.result
    params = {
        k: _param_entry(k, result.values[k], rel_sigma=_round(result.rel_sigma.get(k, math.nan), 3))
        for k in result.names
    }
    for k, why in result.derived.items():
        params[k] = _param_entry(k, result.values[k], derived=why)
    versions = sorted({r.engine_version for r in rows if r.unknown is None}) or [VLLM_VERSION]
    profile: dict[str, Any] = {
        "name": name,
        "engine": f"vllm {', '.join(versions)}",
        "fitted": dt.date.today().isoformat(),
        "data": [str(f) for f in files],
        "rows": {
            "fitted": int(sum(r.unknown is None for r in rows)),
            "unknown": [f"{r.source} {r.label}: {r.unknown}" for r in rows if r.unknown],
            "groups": sorted({r.group for r in rows}),
        },
        "method": (
            f"scipy.optimize.least_squares on log(predicted/measured) ({MEASUREMENT_LOG_SIGMA:.0%} measurement "
            "sigma) with log-normal priors around the published values; kernel efficiencies per GPU generation; "
            "leave-one-group-out and leave-one-GPU-out validation, every fold fitted from the priors"
        ),
        "domain": domain_of(rows),
        "params": params,
        **({"run_settings": settings_report(rows, cal.settings)} if unknowns_of(rows) else {}),
        "spec_only_error": error_summary(rows, cal.spec_only),
        "spec_only_error_by_hw": error_summary(rows, cal.spec_only, by="hw"),
        "spec_only_error_by_hw_class": error_summary_by_hw_and_class(rows, cal.spec_only),
        "fit_error": error_summary(rows, result.predictions),
    }
    if cal.by_group is not None:
        profile["cv_error"] = error_summary(rows, cal.by_group.predictions)
        profile["cv_error_by_group"] = error_summary(rows, cal.by_group.predictions, by="group")
        profile["cv_residuals"] = _residuals(rows, cal.by_group.predictions)
        profile["fold_params"] = _folds(cal.by_group)
        profile["gate"] = gate_baseline(rows, cal.by_group.predictions, files, commit=commit, by="group")
    if cal.by_hw is not None:
        profile["gpu_out_error"] = error_summary(rows, cal.by_hw.predictions)
        profile["gpu_out_error_by_hw"] = error_summary(rows, cal.by_hw.predictions, by="hw")
        profile["gpu_out_error_by_hw_class"] = error_summary_by_hw_and_class(rows, cal.by_hw.predictions)
        profile["gpu_out_folds"] = _folds(cal.by_hw)
        profile["gpu_out_residuals"] = _residuals(rows, cal.by_hw.predictions)
        if cal.by_group is None:  # error bands and the gate then come from the GPU folds
            profile["cv_residuals"] = profile["gpu_out_residuals"]
            profile["gate"] = gate_baseline(rows, cal.by_hw.predictions, files, commit=commit, by="hw")
    if cal.by_tp is not None:
        profile["tp_out_error"] = error_summary(rows, cal.by_tp.predictions)
        profile["tp_out_error_by_tp"] = error_summary(rows, cal.by_tp.predictions, by="tp")
        profile["tp_out_folds"] = _folds(cal.by_tp)
    if cal.base:
        profile = {"base": cal.base, **profile}
    if cal.by_group is None and cal.by_hw is None:
        profile.setdefault("cv_residuals", [])
    return profile
