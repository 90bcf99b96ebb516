"""Fit the cost model's size-dependent efficiency curves to measured kernels (``calibrate --kernels``)."""

from __future__ import annotations

import argparse
import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from perfsim.calibration.fit import log_bounds, relative_sigmas
from perfsim.calibration.param_space import qualified
from perfsim.calibration.profiles import write_profile
from perfsim.calibration.stats import abs_error_stats
from perfsim.collect.model import parameters_for, predict_kernel
from perfsim.collect.schema import KernelRow, read_rows
from perfsim.costs.generations import spec_params
from perfsim.costs.params import CostParams
from perfsim.errors import SpecError
from perfsim.report import format_table
from perfsim.specs.hardware import HardwareSpec, known_hardware, load_hardware

KERNEL_PRIOR_LOG_SIGMA = 1.0  # weak: kernel timings are direct evidence
#: the prior only breaks ties between parameters the kernels cannot tell apart: a hundredth of a data residual
KERNEL_PRIOR_WEIGHT = 0.01
#: kernel predictions are smooth closed forms (no simulation), so the fit can afford many cheap evaluations
#: and tight tolerances
KERNEL_FIT_MAX_NFEV = 2000
KERNEL_FIT_TOL = 1e-10


def guess_hardware(rows: Sequence[KernelRow]) -> str | None:
    """A bundled hardware name matching the device name in the file (e.g. 'NVIDIA H200' -> h200)."""
    name = rows[0].gpu_name.lower().replace(" ", "").replace("-", "")
    for hw in sorted(known_hardware(), key=len, reverse=True):
        if hw in name:
            return hw
    return None


def kernel_errors(rows: Sequence[KernelRow], hw: HardwareSpec, params: CostParams) -> np.ndarray:
    """Signed relative error (%) of perfsim's time for each measured kernel."""
    pred = np.array([predict_kernel(r, hw, params)[0] for r in rows])
    meas = np.array([r.median_s for r in rows])
    return 100.0 * (pred - meas) / meas


def fit_kernels(
    rows: Sequence[KernelRow],
    hw: HardwareSpec,
    *,
    start: CostParams | None = None,
    names: Sequence[str] | None = None,
) -> tuple[CostParams, dict[str, float]]:
    """Least-squares fit (log time errors) of the parameters the kernels inform, from the spec-only values of
    the GPU's generation; returns params and relative sigmas by plain name (a profile keys kernel parameters by
    ``name@generation``)."""
    from scipy.optimize import least_squares  # heavy: imported only when fitting

    names = list(names or parameters_for(list(rows)))
    start = start or spec_params(hw.generation)
    lo_a, hi_a = log_bounds([qualified(n, hw.generation) for n in names])
    # a parameter whose default is 0 (off) starts from the middle of its log range
    x0 = np.array(
        [
            math.log(getattr(start, n)) if getattr(start, n) > 0 else 0.5 * (lo_a[i] + hi_a[i])
            for i, n in enumerate(names)
        ]
    )
    x0 = np.clip(x0, lo_a + 1e-9, hi_a - 1e-9)
    p0 = x0.copy()
    meas = np.array([r.median_s for r in rows])

    def params_of(x):
        return start.model_copy(update={n: float(math.exp(v)) for n, v in zip(names, x, strict=True)})

    def residuals(x):
        p = params_of(x)
        pred = np.array([predict_kernel(r, hw, p)[0] for r in rows])
        return np.concatenate([np.log(pred / meas), KERNEL_PRIOR_WEIGHT * (x - p0) / KERNEL_PRIOR_LOG_SIGMA])

    res = least_squares(
        residuals,
        x0,
        bounds=(lo_a, hi_a),
        method="trf",
        x_scale=1.0,
        max_nfev=KERNEL_FIT_MAX_NFEV,
        xtol=KERNEL_FIT_TOL,
        ftol=KERNEL_FIT_TOL,
    )
    params = params_of(res.x)
    rel = relative_sigmas(res, len(rows), names)
    return params, rel


def error_table(rows: Sequence[KernelRow], errors: np.ndarray) -> dict[str, dict]:
    """Median and 90th-percentile absolute error (%) per operator kind."""
    return {
        op: abs_error_stats([err for r, err in zip(rows, errors, strict=True) if r.op == op])
        for op in sorted({r.op for r in rows})
    }


def load_kernel_file(path: Path, hw_arg: str | None) -> tuple[list[KernelRow], HardwareSpec]:
    """Rows of a kernel CSV and the hardware they were measured on (``--hw``, else guessed from the device)."""
    rows = read_rows(path)
    hw_name = hw_arg or guess_hardware(rows)
    if hw_name is None:
        raise SpecError(
            f"cannot tell which hardware '{rows[0].gpu_name}' is; pass --hw NAME or a hardware YAML "
            f"(known: {', '.join(known_hardware())})",
            source=str(path),
        )
    return rows, load_hardware(hw_name)


def cmd_calibrate_kernels(args: argparse.Namespace) -> int:
    """``perfsim calibrate --kernels FILE [--hw NAME] --out PROFILE``."""
    path = Path(args.kernels)
    rows, hw = load_kernel_file(path, getattr(args, "hw", None))
    spec = spec_params(hw.generation)
    before = kernel_errors(rows, hw, spec)
    params, rel = fit_kernels(rows, hw)
    after = kernel_errors(rows, hw, params)
    names = list(rel)
    print(
        format_table(
            [
                (
                    qualified(n, hw.generation),
                    f"{getattr(params, n):.4g}",
                    CostParams.unit(n),
                    f"+-{100 * rel[n]:.0f}%",
                    f"{getattr(spec, n):.4g}",
                )
                for n in names
            ],
            ["parameter", "value", "unit", "1 sigma", "default"],
            align="lrlrr",
        )
    )
    print(
        f"kernel time error, median |%|: spec-only {np.median(np.abs(before)):.1f}% -> fitted "
        f"{np.median(np.abs(after)):.1f}%"
    )
    if args.out:
        profile = {
            "name": Path(args.out).stem,
            "engine": "kernel microbenchmarks (perfsim collect)",
            "fitted": dt.date.today().isoformat(),
            "data": [str(path)],
            "device": {
                "gpu_name": rows[0].gpu_name,
                "driver": rows[0].driver,
                "cuda": rows[0].cuda,
                "torch": rows[0].torch,
                "backend": rows[0].backend,
            },
            "method": "scipy.optimize.least_squares on log(predicted/measured kernel time)",
            "domain": {"hardware": [hw.name], "generations": [hw.generation]},
            "params": {
                qualified(n, hw.generation): {
                    "value": float(f"{getattr(params, n):.4g}"),
                    "rel_sigma": float(f"{rel[n]:.3g}"),
                    "default": getattr(spec, n),
                    "unit": CostParams.unit(n),
                }
                for n in names
            },
            "spec_only_error": error_table(rows, before),
            "fit_error": error_table(rows, after),
        }
        write_profile(Path(args.out), profile)
        print(f"wrote {args.out}")
    return 0
