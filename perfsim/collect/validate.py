"""``perfsim validate --kernels FILE``: perfsim's per-operator time against measured kernels."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from perfsim.calibration.profiles import load_params
from perfsim.collect.fit import error_table, kernel_errors, load_kernel_file
from perfsim.collect.model import predict_kernel
from perfsim.report import format_table


def cmd_validate_kernels(args: argparse.Namespace) -> int:
    """Print predicted vs measured time per kernel and the error per operator kind."""
    path = Path(args.kernels)
    rows, hw = load_kernel_file(path, getattr(args, "hw", None))
    params, provenance = load_params(args.calibration, hw)
    errors = kernel_errors(rows, hw, params)
    table = error_table(rows, errors)
    if args.json:
        print(
            json.dumps(
                {
                    "hardware": hw.name,
                    "calibration": provenance,
                    "by_op": table,
                    "rows": [
                        {
                            "kernel": r.label,
                            "measured_s": r.median_s,
                            "predicted_s": predict_kernel(r, hw, params)[0],
                            "error_pct": float(e),
                        }
                        for r, e in zip(rows, errors, strict=True)
                    ],
                },
                indent=2,
            )
        )
        return 0
    print(f"{rows[0].gpu_name} as {hw.name}; calibration: {provenance}\n")
    print(
        format_table(
            [
                (
                    r.label,
                    r.median_s * 1e6,
                    predict_kernel(r, hw, params)[0] * 1e6,
                    predict_kernel(r, hw, params)[1],
                    f"{e:+.1f}%",
                )
                for r, e in zip(rows, errors, strict=True)
            ],
            ["kernel", "measured us", "predicted us", "bound", "error"],
            align="lrrlr",
        )
    )
    print()
    print(
        format_table(
            [
                (op, v["n"], f"{v['median_abs_pct']:.1f}%", f"{v['p90_abs_pct']:.1f}%")
                for op, v in table.items()
            ],
            ["op", "kernels", "median |error|", "p90 |error|"],
            align="lrrr",
        )
    )
    print(f"\nall kernels: median |error| {np.median(np.abs(errors)):.1f}%")
    return 0
