"""Calibrated parameter values keyed by name, with kernel efficiencies kept per GPU generation.

A profile's values are a flat mapping. Parameters of the ``kernel`` scope are named ``name@generation``
(``gemm_eff_nvfp4@blackwell``): what one generation's kernels reach says nothing about another's, so a value
fitted on Blackwell GPUs is applied to Blackwell GPUs only, and a Hopper GPU takes its own fitted value or its
generation's spec-only default. Link, engine and workload parameters have no suffix and apply everywhere. A
kernel parameter written without a suffix (older profiles) belongs to ``LEGACY_GENERATION``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import ValidationError

from perfsim.costs.generations import bounds_for, spec_params
from perfsim.costs.params import CostParams
from perfsim.errors import SpecError
from perfsim.specs.loading import validation_error_to_spec_error

#: the generation of unsuffixed kernel parameters: every profile before generations were kept apart was fitted
#: on GB300 (Blackwell)
LEGACY_GENERATION = "blackwell"
SEPARATOR = "@"


def split_name(name: str) -> tuple[str, str | None]:
    """``'hbm_eff@hopper'`` -> ``('hbm_eff', 'hopper')``; a name without a suffix has no generation."""
    base, _, generation = name.partition(SEPARATOR)
    return base, generation or None


def qualified(name: str, generation: str) -> str:
    """The key of a parameter for a generation: suffixed for kernel parameters, plain otherwise."""
    base, _ = split_name(name)
    return f"{base}{SEPARATOR}{generation}" if CostParams.scope(base) == "kernel" else base


def check_name(name: str) -> str:
    """A valid key: a cost parameter, suffixed with a generation only if it is a kernel parameter."""
    base, generation = split_name(name)
    if base not in CostParams.model_fields:
        raise SpecError(f"unknown cost parameter '{base}'; allowed: {', '.join(CostParams.model_fields)}")
    if generation and CostParams.scope(base) != "kernel":
        raise SpecError(
            f"'{name}': only kernel parameters are kept per GPU generation ({base} is {CostParams.scope(base)})"
        )
    return name


def params_for(values: Mapping[str, float], generation: str, *, source: str = "profile") -> CostParams:
    """The cost parameters of a GPU generation: its spec-only values, overridden by the values that apply."""
    update: dict[str, float] = {}
    for key, value in values.items():
        base, gen = split_name(key)
        if CostParams.scope(base) == "kernel" and (gen or LEGACY_GENERATION) != generation:
            continue
        update[base] = value
    try:
        return CostParams(**{**spec_params(generation).model_dump(), **update})
    except ValidationError as exc:
        raise validation_error_to_spec_error(exc, source) from None


def generations_of(values: Iterable[str]) -> set[str]:
    """The generations whose kernel parameters a set of keys fits."""
    out = set()
    for key in values:
        base, gen = split_name(key)
        if CostParams.scope(base) == "kernel":
            out.add(gen or LEGACY_GENERATION)
    return out


def bounds_of(name: str) -> tuple[float, float]:
    """The physical bounds of a key (a kernel parameter's are its generation's)."""
    base, generation = split_name(name)
    return bounds_for(base, generation or LEGACY_GENERATION)


def default_of(name: str) -> float:
    """The spec-only value of a key (a kernel parameter's is its generation's)."""
    base, generation = split_name(name)
    return float(getattr(spec_params(generation or LEGACY_GENERATION), base))
