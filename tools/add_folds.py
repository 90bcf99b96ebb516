#!/usr/bin/env python
"""Add validation folds to a committed profile without refitting it: each fold is fitted from the priors on the
rows outside it, with the profile's fitted parameter names and its base's values fixed, exactly as
``perfsim calibrate --folds`` would. Use it when a profile was fitted with fewer folds than you now want
reported (the folds do not depend on the full fit). Not a test::

    python tools/add_folds.py calibrations/vllm-0.13.0.yaml --folds tp

``--folds none`` only fills the per-GPU x metric-class summaries a profile written before they existed lacks
(spec-only re-predicted, leave-one-GPU-out from its stored residuals). Every run also rewrites the profile's
``domain`` from its data (what the rows cover does not depend on the fit).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from perfsim.calibration.calibrate import FOLD_NAMES, _folds, domain_of
from perfsim.calibration.crossval import cross_validate
from perfsim.calibration.evaluator import Evaluator
from perfsim.calibration.fit import error_summary, error_summary_by_hw_and_class
from perfsim.calibration.measurements import load_measurements
from perfsim.calibration.profiles import read_profile, values_from_profile, write_profile

#: the profile keys each fold kind writes
KEYS = {
    "hw": ("gpu_out_error", "gpu_out_error_by_hw", "gpu_out_folds", "gpu_out_error_by_hw_class"),
    "tp": ("tp_out_error", "tp_out_error_by_tp", "tp_out_folds", ""),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("--folds", default="tp", help="Comma-separated fold kinds: hw, tp.")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", default="", help="Comma-separated folds to run (e.g. tp1,tp8).")
    args = ap.parse_args()
    profile = dict(read_profile(str(args.profile)) or {})
    version = profile["engine"].removeprefix("vllm ")
    rows = [
        r
        for r in load_measurements([Path("measurements") / Path(f).name for f in profile["data"]])
        if r.engine_version == version
    ]
    names = tuple(k for k, v in profile["params"].items() if "derived" not in v)
    fixed = values_from_profile(read_profile(profile["base"])) if profile.get("base") else {}
    profile["domain"] = domain_of(rows)
    evaluator = Evaluator(rows, workers=args.workers)
    try:
        if "spec_only_error_by_hw_class" not in profile:
            profile["spec_only_error_by_hw_class"] = error_summary_by_hw_and_class(
                rows, evaluator.predict({})
            )
        if "gpu_out_residuals" in profile and "gpu_out_error_by_hw_class" not in profile:
            stored = {(e["source"], e["metric"]): e["predicted"] for e in profile["gpu_out_residuals"]}
            predicted = np.array([stored.get((r.source, r.metric), np.nan) for r in rows])
            profile["gpu_out_error_by_hw_class"] = error_summary_by_hw_and_class(rows, predicted)
        for by in (f.strip() for f in args.folds.split(",") if f.strip() != "none"):
            only = [f.strip() for f in args.only.split(",") if f.strip()] or None
            cv = cross_validate(evaluator, names, by=by, fixed=fixed, only=only)
            total, per, folds, per_hw_class = KEYS[by]
            profile[total] = error_summary(rows, cv.predictions)
            profile[per] = error_summary(rows, cv.predictions, by=by)
            profile[folds] = _folds(cv)
            if per_hw_class:
                profile[per_hw_class] = error_summary_by_hw_and_class(rows, cv.predictions)
            print(f"leave-one-{FOLD_NAMES[by]}-out: {profile[total]}")
    finally:
        evaluator.close()
    write_profile(args.profile, profile)
    print(f"wrote {args.profile}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
