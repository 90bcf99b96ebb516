"""Calibration profiles: fitted ``CostParams`` with their data, errors and domain, as YAML.

A profile (``calibrations/<name>.yaml``) records what was fitted, on which measurements, when, with
which in-sample and leave-one-group-out errors, and the per-row cross-validation residuals from which
every prediction's error band is derived. ``default`` selects the bundled vLLM 0.14.1 profile.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from perfsim.calibration.param_space import check_name, generations_of, params_for, split_name
from perfsim.calibration.run_settings import settings_from_entries
from perfsim.costs.generations import GENERATION_DEFAULTS
from perfsim.costs.params import CostParams
from perfsim.errors import SpecError, UnknownNameError
from perfsim.paths import data_dir
from perfsim.specs.hardware import HardwareSpec, load_hardware
from perfsim.specs.loading import load_yaml_file, validation_error_to_spec_error

DEFAULT_PROFILE = "vllm-0.14.1"


def known_profiles() -> list[str]:
    """Names of the bundled calibration profiles."""
    return sorted(p.stem for p in data_dir("calibrations").glob("*.yaml"))


def resolve_profile_path(name: str | None) -> Path | None:
    """The YAML file of a profile name or path (None for 'none' / spec-only)."""
    if name == "default":
        path = data_dir("calibrations") / f"{DEFAULT_PROFILE}.yaml"
        return path if path.exists() else None
    if not name or name == "none":
        return None
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise SpecError("calibration file not found", source=str(path))
        return path
    path = data_dir("calibrations") / f"{name}.yaml"
    if not path.exists():
        raise UnknownNameError("calibration", name, [*known_profiles(), "none", "default"])
    return path


class ProfileDomain(BaseModel):
    """What a profile was fitted on (hardware, models, ...; length and load ranges as [low, high])."""

    model_config = ConfigDict(extra="allow")
    hardware: list[str] = []
    models: list[str] = []
    precisions: list[str] = []
    parallel: list[str] = []
    isl: tuple[int, int] | None = None
    osl: tuple[int, int] | None = None
    concurrency: tuple[int, int] | None = None
    mtp: bool = False
    disaggregated: bool = False


class ProfileResidual(BaseModel):
    """One cross-validation residual: a measured row's group keys and its signed error (%)."""

    model_config = ConfigDict(extra="allow")
    model: str
    parallel: str
    metric_class: str
    error_pct: float


class _ProfileShape(BaseModel):
    """The parts of a profile that predictions read; the rest is a record for people."""

    model_config = ConfigDict(extra="allow")
    params: dict[str, float | dict[str, Any]]
    domain: ProfileDomain = ProfileDomain()
    cv_residuals: list[ProfileResidual] = []


@functools.lru_cache(maxsize=16)
def _read_profile(path: str, _stamp: float) -> dict[str, Any]:
    data = load_yaml_file(Path(path))
    try:
        _ProfileShape(**data)
    except ValidationError as exc:
        raise validation_error_to_spec_error(exc, path) from None
    return data


def read_profile(name: str | None) -> dict[str, Any] | None:
    """The parsed profile YAML (None for spec-only)."""
    path = resolve_profile_path(name)
    if path is None:
        return None
    return _read_profile(str(path), path.stat().st_mtime)


def values_from_profile(profile: dict[str, Any] | None, source: str = "profile") -> dict[str, float]:
    """The profile's fitted values by key (``param_space``: kernel efficiencies per GPU generation), on top of
    those of its ``base`` profile (an engine version's profile sharing another's kernel efficiencies)."""
    if profile is None:
        return {}
    base = profile.get("base")
    if base:
        if base == profile.get("name"):
            raise SpecError("a profile cannot be its own base", source=source, field="base")
        inherited = values_from_profile(read_profile(str(base)), str(base))
        return {**inherited, **_own_values(profile, source)}
    return _own_values(profile, source)


def _own_values(profile: dict[str, Any], source: str) -> dict[str, float]:
    values = profile.get("params")
    if not isinstance(values, dict):
        raise SpecError("expected a 'params' mapping of cost parameter values", source=source, field="params")
    out: dict[str, float] = {}
    for key, v in values.items():
        if isinstance(v, dict) and "value" not in v:
            raise SpecError(
                "expected 'value: NUMBER' (or a bare number)", source=source, field=f"params.{key}"
            )
        try:
            check_name(str(key))
        except SpecError as exc:
            raise SpecError(str(exc), source=source, field=f"params.{key}") from None
        value = v["value"] if isinstance(v, dict) else v
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise SpecError(f"expected a finite number, got {value!r}", source=source, field=f"params.{key}")
        out[str(key)] = float(value)
    for generation in generations_of(out) | {"blackwell"}:
        params_for(out, generation, source=source)  # every value within its bounds
    return out


def settings_from_profile(profile: dict[str, Any] | None) -> dict[str, int]:
    """The run settings a profile fitted (``run_settings``), on top of its base profile's."""
    if profile is None:
        return {}
    base = profile.get("base")
    inherited = settings_from_profile(read_profile(str(base))) if base and base != profile.get("name") else {}
    return {**inherited, **settings_from_entries(profile.get("run_settings"))}


def version_profile(version: str) -> str | None:
    """The bundled profile of a vLLM version (``vllm-<version>``), if there is one."""
    name = f"vllm-{version}"
    return name if name in known_profiles() else None


def profile_settings(name: str | None) -> dict[str, int]:
    """The fitted run settings of a profile name or path (none for spec-only)."""
    path = resolve_profile_path(name)
    return settings_from_profile(read_profile(str(path))) if path is not None else {}


def profile_values(name: str | None) -> tuple[dict[str, float], str]:
    """Fitted values of a profile name or path and its label ('spec-only (none)' without one)."""
    path = resolve_profile_path(name)
    if path is None:
        return {}, "spec-only (none)"
    return values_from_profile(read_profile(str(path)), str(path)), path.stem


def _is_bundled(path: Path) -> bool:
    return path.parent.resolve() == data_dir("calibrations").resolve()


def _version_key(name: str) -> tuple[int, ...]:
    digits = re.findall(r"\d+", name)
    return tuple(int(d) for d in digits)


def borrowed_kernel_values(name: str, generation: str) -> tuple[dict[str, float], str | None]:
    """A GPU generation's kernel values (``<param>@<generation>``) from the newest other bundled profile that
    fitted them, and that profile's name; none when no other bundled profile did.

    Kernel-family efficiencies belong to a GPU generation and are shared across vLLM versions (engine overheads
    are not), so a version's profile without data on a generation predicts it with the kernels another version's
    runs measured rather than with spec-only values.
    """
    for other in sorted(known_profiles(), key=_version_key, reverse=True):
        if other == name:
            continue
        own = _own_values(read_profile(other) or {"params": {}}, other)
        kernels = {k: v for k, v in own.items() if split_name(k)[1] == generation}
        if kernels:
            return kernels, other
    return {}, None


def borrowed_kernels(name: str | None, hw: HardwareSpec) -> tuple[dict[str, float], str | None]:
    """The kernel values a bundled profile takes for ``hw``'s generation from another version's profile (none
    when it fits that generation itself, or is a file of one's own), and where they come from, in words."""
    path = resolve_profile_path(name)
    if path is None or not _is_bundled(path):
        return {}, None
    if hw.generation in generations_of(values_from_profile(read_profile(str(path)), str(path))):
        return {}, None
    borrowed, donor = borrowed_kernel_values(path.stem, hw.generation)
    if donor is None:
        return {}, None
    return borrowed, f"{donor}'s {', '.join(_hardware_of(donor, hw.generation))} runs"


def prediction_values(name: str | None) -> tuple[dict[str, float], str]:
    """A profile's values as predictions use them (for validating runs the way ``perfsim predict`` would predict
    them): ``profile_values`` plus, for a bundled profile, the kernel values of every GPU generation it lacks
    that another bundled profile fitted (``borrowed_kernel_values``). Not for calibration: a base lends only its
    own values."""
    values, label = profile_values(name)
    path = resolve_profile_path(name)
    if path is None or not _is_bundled(path):
        return values, label
    for generation in sorted(set(GENERATION_DEFAULTS) - generations_of(values)):
        borrowed, donor = borrowed_kernel_values(path.stem, generation)
        if donor:
            values = {**borrowed, **values}
            label += f" + {generation} kernels from {donor}"
    return values, label


def load_params(name: str | None, hw: HardwareSpec) -> tuple[CostParams, str]:
    """Cost parameters of a profile (or the generation's spec-only values for 'none') and a provenance string.

    'default' selects the bundled vLLM 0.14.1 profile when it exists, else the spec-only parameters. A bundled
    profile that fits no kernel value of ``hw``'s generation takes them from another bundled version's profile
    (``borrowed_kernels``); a profile file outside the bundled ones is used as it is.
    """
    path = resolve_profile_path(name)
    if path is None:
        return params_for({}, hw.generation), "spec-only (no calibration)"
    profile = read_profile(str(path))
    borrowed, kernels_from = borrowed_kernels(name, hw)
    values = {**borrowed, **values_from_profile(profile, str(path))}
    where = provenance(profile, hw, kernels_from=kernels_from)
    return params_for(values, hw.generation, source=str(path)), f"{path.stem} ({where})"


def _hardware_of(name: str, generation: str) -> list[str]:
    """The GPUs of ``generation`` a bundled profile's own rows were measured on."""
    hardware = ((read_profile(name) or {}).get("domain") or {}).get("hardware", [])
    return sorted(h for h in hardware if load_hardware(h).generation == generation)


def provenance(profile: dict[str, Any] | None, hw: HardwareSpec, *, kernels_from: str | None = None) -> str:
    """'spec-only', 'calibrated on this hardware', 'transferred from <GPUs>' (same generation: kernel
    efficiencies apply), or 'engine and link parameters from <GPUs>; <generation> kernel efficiencies spec-only'
    (or 'from ``kernels_from``' when they were borrowed from another version's profile)."""
    if profile is None:
        return "spec-only"
    if not values_from_profile(profile):
        return "spec-only (the profile fits no parameter)"
    fitted_on = sorted(profile_hardware(profile))
    if hw.name in fitted_on:
        return "calibrated on this hardware"
    where = ", ".join(fitted_on) or "other hardware"
    if hw.generation in generations_of(values_from_profile(profile)):
        return f"transferred from {where}"
    kernels = f"from {kernels_from}" if kernels_from else "spec-only"
    return f"engine and link parameters from {where}; {hw.generation} kernel efficiencies {kernels}"


def profile_hardware(profile: dict[str, Any]) -> set[str]:
    """GPUs a profile's values were fitted on, its base's included."""
    own = set((profile.get("domain") or {}).get("hardware", []))
    base = profile.get("base")
    return own | (profile_hardware(read_profile(str(base)) or {}) if base else set())


def write_profile(path: Path, profile: dict[str, Any]) -> None:
    """Write a profile YAML (plain types only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# perfsim calibration profile: fitted cost-model parameters, the data they were fitted on, and\n"
        "# their in-sample and leave-one-group-out cross-validated errors. Written by `perfsim calibrate`.\n"
    )
    path.write_text(header + yaml.safe_dump(profile, sort_keys=False, width=110))
