"""``perfsim validate`` and ``perfsim calibrate``: compare with real runs, fit the cost parameters."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from perfsim.calibration.calibrate import build_profile, run_calibration
from perfsim.calibration.crossval import FOLD_KEYS
from perfsim.calibration.evaluator import ValuesByVersion
from perfsim.calibration.fit import default_fit_params
from perfsim.calibration.measurements import default_measurement_files, load_measurements, normalize_setup
from perfsim.calibration.param_space import check_name, default_of, split_name
from perfsim.calibration.profiles import (
    prediction_values,
    profile_settings,
    profile_values,
    read_profile,
    version_profile,
    write_profile,
)
from perfsim.calibration.stats import FIT_MAX_NFEV
from perfsim.calibration.validate import validate
from perfsim.collect.fit import cmd_calibrate_kernels
from perfsim.collect.validate import cmd_validate_kernels
from perfsim.commands.common import check_output_path, input_files
from perfsim.costs.params import CostParams
from perfsim.errors import SpecError
from perfsim.plots import parity_plot
from perfsim.report import format_table
from perfsim.specs.deployment import VLLM_VERSION
from perfsim.specs.loading import load_yaml_file, safe_yaml, yaml_problem


def _key_values(items: list[str], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise SpecError(f"{flag} '{item}': expected KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key.strip().replace("-", "_")] = safe_yaml(value)
        except (yaml.YAMLError, ValueError) as exc:
            problem = yaml_problem(exc) if isinstance(exc, yaml.YAMLError) else str(exc)
            raise SpecError(f"{flag} '{item}': the value is not valid YAML ({problem})") from None
    return out


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        nargs="*",
        help="Measurement CSV files or bench-serve JSON files (default: the bundled measurements).",
    )
    p.add_argument(
        "--assume",
        action="append",
        metavar="KEY=VALUE",
        help="Fill a setting the data do not state (e.g. concurrency=512), or override a vllm serve flag.",
    )
    p.add_argument(
        "--setup", metavar="YAML", help="Settings of bench-serve JSON runs (model, hw, precision, flags)."
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="One setting of bench-serve JSON runs."
    )
    p.add_argument("--workers", type=int, default=None, help="Parallel simulation processes [default: CPUs].")


def _load_rows(args: argparse.Namespace):
    setup = normalize_setup(dict(load_yaml_file(Path(args.setup))), args.setup) if args.setup else {}
    setup.update(normalize_setup(_key_values(args.set, "--set"), "--set"))
    if args.workers is not None and args.workers < 1:
        raise SpecError("--workers must be >= 1")
    rows = load_measurements(args.files or None, assume=_key_values(args.assume, "--assume"), setup=setup)
    if not rows:
        raise SpecError("no measurement rows found")
    return rows


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``validate`` and ``calibrate``."""
    p = sub.add_parser("validate", help="Predict measured runs and report the errors.")
    _add_data_args(p)
    p.add_argument(
        "--calibration",
        default="default",
        help="Profile name or YAML ('none' = spec-only) [default: the vLLM 0.14.1 profile].",
    )
    p.add_argument("--plot", metavar="FILE", help="Write a parity plot (PNG/SVG/PDF).")
    p.add_argument(
        "--kernels",
        metavar="CSV",
        help="Validate per-operator times against a kernel measurement file from `perfsim collect` instead.",
    )
    p.add_argument("--hw", help="Hardware of the kernel file (default: guessed from its device name).")
    p.add_argument("--json", action="store_true", help="Print JSON.")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("calibrate", help="Fit the cost parameters to measurements (least squares + CV).")
    _add_data_args(p)
    p.add_argument(
        "--out", required=False, metavar="YAML", help="Write the profile here (e.g. calibrations/mine.yaml)."
    )
    p.add_argument(
        "--params",
        help="Comma-separated parameters to fit; kernel parameters per GPU generation as NAME@GENERATION (e.g. hbm_eff@hopper) [default: the standard set, per generation of the data, with the GEMM efficiency of each weight precision in the data].",
    )
    p.add_argument("--no-cv", action="store_true", help="Skip the validation folds (same as --folds none).")
    p.add_argument(
        "--folds",
        default="group,hw",
        help="Validation folds, comma-separated: group (leave-one-group-out), hw (leave-one-GPU-out), tp "
        "(leave-one-TP-size-out), or none [default: group,hw].",
    )
    p.add_argument(
        "--vllm-version",
        default=VLLM_VERSION,
        help=f"Fit the rows of runs served by this vLLM version (each profile is one engine version) [default: {VLLM_VERSION}].",
    )
    p.add_argument(
        "--base",
        metavar="PROFILE",
        help="Hold this profile's values fixed and fit only the rest (e.g. a vLLM 0.13.0 engine profile "
        "that shares vllm-0.14.1's kernel efficiencies); the written profile inherits them.",
    )
    p.add_argument(
        "--max-nfev",
        type=int,
        default=FIT_MAX_NFEV,
        help=f"Maximum fit evaluations [default: {FIT_MAX_NFEV}].",
    )
    p.add_argument(
        "--kernels", metavar="CSV", help="Fit efficiency curves from a `perfsim collect` kernel file."
    )
    p.add_argument("--hw", help="Hardware of the kernel file (default: guessed from its device name).")
    p.set_defaults(handler=cmd_calibrate)


def cmd_validate(args: argparse.Namespace) -> int:
    """Print measured vs predicted with errors; optional parity plot."""
    if args.kernels:
        return cmd_validate_kernels(args)
    if args.plot:
        check_output_path(args.plot, (".png", ".svg", ".pdf", ".jpg"))
    rows = _load_rows(args)
    values, label = _validation_values(args.calibration, rows)
    report = validate(
        rows, values, label, workers=args.workers, settings=_validation_settings(args.calibration, rows)
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format())
    if args.plot:
        parity_plot(report, args.plot)
        if not args.json:
            print(f"\nwrote {args.plot}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit, cross-validate and write the profile."""
    if args.max_nfev < 1:
        raise SpecError("--max-nfev must be >= 1")
    if args.out:
        check_output_path(args.out, (".yaml", ".yml"), inputs=input_files(args))
    if args.kernels:
        return cmd_calibrate_kernels(args)
    commit = _git_commit(exclude=args.out)  # the code the fit runs, before anything can change the tree
    names = _param_names(args.params) if args.params else None
    folds = _folds(args)
    all_rows = _load_rows(args)
    rows = [r for r in all_rows if r.engine_version == args.vllm_version]
    if not rows:
        versions = sorted({r.engine_version for r in all_rows})
        raise SpecError(
            f"--vllm-version {args.vllm_version}: no rows of that version; the data have {', '.join(versions)}"
        )
    if len(rows) < len(all_rows):
        print(
            f"fitting the {len(rows)} rows served by vLLM {args.vllm_version} ({len(all_rows) - len(rows)} of other versions left out)"
        )
    base_values, _label = profile_values(args.base) if args.base else ({}, "")
    # a base profile lends its kernel efficiencies; engine, link and workload parameters are refitted per version
    names = names or tuple(
        n
        for n in default_fit_params(rows)
        if n not in base_values
        or n in _derived_in(args.base)
        or CostParams.scope(split_name(n)[0]) != "kernel"
    )
    cal = run_calibration(
        rows,
        names=names,
        folds=folds,
        workers=args.workers,
        max_nfev=args.max_nfev,
        base=_profile_name(args.base) if args.base else "",
        base_values=base_values,
    )
    result = cal.result
    table = [
        (
            key,
            f"{result.values[key]:.4g}",
            CostParams.unit(split_name(key)[0]),
            f"+-{100 * result.rel_sigma[key]:.0f}%" if key in result.rel_sigma else "derived",
            f"{default_of(key):.4g}",
        )
        for key in [*result.names, *result.derived]
    ]
    print(format_table(table, ["parameter", "value", "unit", "1 sigma", "default"], align="lrlrr"))
    name = Path(args.out).stem if args.out else "calibration"
    used = {r.source.rsplit(":", 1)[0] for r in rows}
    files = args.files or [f"measurements/{p.name}" for p in default_measurement_files() if p.name in used]
    profile = build_profile(name, cal, files, commit=commit)
    if args.out:
        write_profile(Path(args.out), profile)
        print(f"wrote {args.out}")
    return 0


def _validation_values(calibration: str, rows) -> tuple[Any, str]:
    """A profile's values; for 'default', each engine version's bundled profile (``vllm-<version>``)."""
    values, label = prediction_values(calibration)
    if calibration != "default":
        return values, label
    by_version = {VLLM_VERSION: values}
    for version in sorted({r.engine_version for r in rows} - {VLLM_VERSION}):
        name = version_profile(version)
        if name:
            by_version[version] = prediction_values(name)[0]
            label += f" + {name} for vLLM {version} rows"
    return (ValuesByVersion(by_version, VLLM_VERSION) if len(by_version) > 1 else values), label


def _validation_settings(calibration: str, rows) -> dict[str, int]:
    """A profile's fitted run settings; for 'default', those of each engine version's bundled profile."""
    settings = profile_settings(calibration)
    if calibration == "default":
        for version in sorted({r.engine_version for r in rows} - {VLLM_VERSION}):
            name = version_profile(version)
            if name:
                settings = {**profile_settings(name), **settings}
    return settings


def _folds(args: argparse.Namespace) -> tuple[str, ...]:
    """The validation folds of --folds / --no-cv."""
    if args.no_cv or args.folds.strip() == "none":
        return ()
    folds = tuple(f.strip() for f in args.folds.split(",") if f.strip())
    bad = [f for f in folds if f not in FOLD_KEYS]
    if bad:
        raise SpecError(f"--folds: unknown {', '.join(bad)}; allowed: {', '.join(FOLD_KEYS)}, none")
    return folds


def _profile_name(name_or_path: str) -> str:
    """The profile a --base names: a bundled name as given, a YAML path by its file name."""
    return Path(name_or_path).stem if name_or_path.endswith((".yaml", ".yml")) else name_or_path


def _derived_in(profile: str | None) -> set[str]:
    """Keys a profile derived rather than fitted (a derived value is refitted on top of a base)."""
    data = read_profile(profile) if profile else None
    params = (data or {}).get("params") or {}
    return {k for k, v in params.items() if isinstance(v, dict) and "derived" in v}


def _param_names(text: str) -> tuple[str, ...]:
    """The keys of --params, each checked (a cost parameter, suffixed @generation only if a kernel one)."""
    names = []
    for item in text.split(","):
        try:
            names.append(check_name(item.strip()))
        except SpecError as exc:
            raise SpecError(f"--params: {exc}") from None
    return tuple(names)


def _git_commit(exclude: str | None = None) -> str:
    """The checkout's commit (with '+dirty' when it has changes other than ``exclude``, the profile being
    rewritten), or '' outside a git checkout."""
    spec = [".", f":(exclude){exclude}"] if exclude else ["."]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *spec], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
