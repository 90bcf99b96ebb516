"""Hardware specs: one YAML file per GPU kind, every number with unit, source and status.

A ``HardwareSpec`` is validated data (pydantic). Numbers are stored as written in the file
(``Quantity``: value, unit, source, status) and read back in SI units through the accessors, e.g.
``hw.peak_flops("nvfp4")`` in flop/s or ``hw.hbm_bandwidth_Bps`` in bytes/s.
"""

from __future__ import annotations

import functools
import math
import re
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from perfsim.errors import SpecError, UnknownNameError
from perfsim.paths import data_dir
from perfsim.specs.loading import load_yaml_file, validation_error_to_spec_error
from perfsim.specs.units import allowed_units, to_si

# Tensor-core precisions a hardware file may list, in the order perfsim prints them.
PRECISIONS = ("nvfp4", "fp8", "bf16", "tf32", "fp32", "int8")


class Status(str, Enum):
    """How trustworthy a number is (the P/S/D/U marks of shared/reference/hardware.md)."""

    primary = "primary"  # stated in a vendor document
    secondary = "secondary"  # vendor figure via a secondary copy, or a third-party measurement
    derived = "derived"  # arithmetic from other listed figures
    unverified = "unverified"  # conflicting or unconfirmed; a placeholder
    what_if = "what-if"  # changed by the user for a hypothetical study


class Quantity(BaseModel):
    """One number with its unit, where it comes from and how sure it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(description="The number, in `unit`.")
    unit: str = Field(description="Unit of `value`; allowed units depend on the field (see units.py).")
    source: str = Field(min_length=1, description="Where the number comes from (a key of `sources` or text).")
    status: Status = Field(
        default=Status.unverified,
        description="primary / secondary / derived / unverified (a number without a status is unverified).",
    )
    note: str | None = Field(default=None, description="Caveats, conflicts, conversions.")

    @field_validator("value", mode="before")
    @classmethod
    def _a_number(cls, value: Any) -> Any:
        if isinstance(value, str):  # YAML 1.1 reads 1e30 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {value!r}")
        return value

    def si(self, dimension: str) -> float:
        """The value converted to the SI base unit of ``dimension``."""
        return to_si(self.value, self.unit, dimension)


class ScaleUpLink(BaseModel):
    """The scale-up fabric (NVLink / xGMI) of one GPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    technology: str = Field(description="Name of the link, e.g. 'NVLink 5'.")
    bandwidth_per_direction: Quantity = Field(description="Per-GPU bandwidth in one direction (bandwidth).")
    domain_size: Quantity = Field(description="GPUs reachable over the scale-up fabric (count).")
    node_size: Quantity | None = Field(
        default=None,
        description="GPUs of one node (server or compute tray) of the scale-up domain (count): vLLM's custom "
        "all-reduce runs only within a node. Defaults to the domain size.",
    )


class ScaleOutLink(BaseModel):
    """The scale-out network (NIC) of one GPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    technology: str = Field(description="NIC name, e.g. 'ConnectX-8 800 Gb/s'.")
    bandwidth_per_direction: Quantity = Field(
        description="Per-GPU NIC bandwidth in one direction (bandwidth)."
    )


# field path -> unit dimension; checked after parsing so errors name the field and allowed units
_DIMENSIONS: dict[str, str] = {
    "hbm_capacity": "bytes",
    "hbm_usable": "bytes",
    "hbm_bandwidth": "bandwidth",
    "sm_count": "count",
    "l2_cache": "bytes",
    "sfu_exp_rate": "exp_rate",
    "tdp": "power",
    "boost_clock": "frequency",
    "scaleup.bandwidth_per_direction": "bandwidth",
    "scaleup.domain_size": "count",
    "scaleup.node_size": "count",
    "scaleout.bandwidth_per_direction": "bandwidth",
}


#: plausible ranges (low, high, unit) of the numbers that drive predictions: 10x beyond the shipping GPUs of 2026
PLAUSIBLE: dict[str, tuple[float, float, str]] = {
    "hbm_capacity": (4, 10_000, "GB"),
    "hbm_bandwidth": (0.2, 100, "TB/s"),
    "sm_count": (8, 2_000, "SMs"),
    "boost_clock": (0.3, 6, "GHz"),
    "scaleup.bandwidth_per_direction": (5, 20_000, "GB/s"),
    "scaleup.domain_size": (1, 10_000, "GPUs"),
    "scaleout.bandwidth_per_direction": (1, 2_000, "GB/s"),
    "peak_dense.bf16": (10, 100_000, "TFLOPS"),
}
UNIT_SCALE = {"GB": 1e9, "TB/s": 1e12, "SMs": 1.0, "GHz": 1e9, "GB/s": 1e9, "GPUs": 1.0, "TFLOPS": 1e12}


class HardwareSpec(BaseModel):
    """A GPU kind: peak tensor throughput per precision, memory, links; all numbers sourced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Short name used on the command line, e.g. 'gb300'.")
    display_name: str = Field(description="Human-readable product name.")
    vendor: str = Field(description="GPU vendor.")
    architecture: str = Field(
        description="Architecture family, e.g. 'hopper', 'blackwell', 'blackwell-ultra'."
    )
    compute_capability: str = Field(description="CUDA compute capability, e.g. '10.3'; selects vLLM kernels.")
    sources: dict[str, str] = Field(default_factory=dict, description="Source keys used by `source` fields.")
    peak_dense: dict[str, Quantity] = Field(
        description="Dense tensor-core peak per precision (flop_rate); precisions: " + ", ".join(PRECISIONS)
    )
    peak_sparse: dict[str, Quantity] = Field(
        default_factory=dict, description="2:4 (or 4:8 for FP4) structured-sparse peak per precision."
    )
    hbm_capacity: Quantity = Field(description="Marketed HBM capacity (bytes).")
    hbm_usable: Quantity = Field(
        description="Memory the driver reports (nvidia-smi total), to which vLLM's gpu_memory_utilization applies."
    )
    hbm_bandwidth: Quantity = Field(description="Peak HBM bandwidth (bandwidth).")
    scaleup: ScaleUpLink
    scaleout: ScaleOutLink
    sm_count: Quantity = Field(description="Streaming multiprocessors (count).")
    l2_cache: Quantity | None = Field(default=None, description="L2 cache size (bytes).")
    sfu_exp_rate: Quantity | None = Field(
        default=None, description="Special-function (exp2) rate (exp_rate)."
    )
    boost_clock: Quantity | None = Field(default=None, description="Boost clock (frequency).")
    tdp: Quantity | None = Field(default=None, description="Board power (power).")

    @field_validator("peak_dense", "peak_sparse")
    @classmethod
    def _known_precisions(cls, value: dict[str, Quantity]) -> dict[str, Quantity]:
        for precision, quantity in value.items():
            if precision not in PRECISIONS:
                raise ValueError(f"unknown precision '{precision}'; allowed: {', '.join(PRECISIONS)}")
            _check_unit(quantity, "flop_rate", precision)
            if not (math.isfinite(quantity.value) and quantity.value > 0):
                raise ValueError(f"{precision}: peak must be a positive finite number, got {quantity.value}")
        return value

    @model_validator(mode="after")
    def _check_units_and_values(self) -> HardwareSpec:
        for path, dimension in _DIMENSIONS.items():
            quantity: Any = self
            for part in path.split("."):
                quantity = getattr(quantity, part)
            if quantity is None:
                continue
            _check_unit(quantity, dimension, path)
            if not (math.isfinite(quantity.value) and quantity.value > 0):
                raise ValueError(
                    f"{path}: must be a positive finite number, got {quantity.value} {quantity.unit}"
                )
            if dimension == "count" and quantity.value != int(quantity.value):
                raise ValueError(f"{path}: a count must be a whole number, got {quantity.value}")
        if not re.fullmatch(r"\d{1,2}\.\d{1,2}", self.compute_capability):
            raise ValueError(
                f"compute_capability: expected MAJOR.MINOR such as '10.0', got '{self.compute_capability}'"
            )
        if self.hbm_usable_bytes > self.hbm_capacity_bytes * 1.1:
            raise ValueError("hbm_usable: larger than hbm_capacity")
        for needed in ("bf16",):
            if needed not in self.peak_dense:
                raise ValueError(f"peak_dense: the '{needed}' peak is required")
        return self

    def implausible(self) -> list[str]:
        """Numbers far outside any shipping GPU (a note each: a what-if is allowed, a typo should be seen)."""
        out = []
        for path, (lo, hi, unit) in PLAUSIBLE.items():
            quantity: Any = self
            for part in path.split("."):
                quantity = (
                    getattr(quantity, part, None) if not isinstance(quantity, dict) else quantity.get(part)
                )
            if quantity is None:
                continue
            dimension = "flop_rate" if path.startswith("peak_dense") else _DIMENSIONS[path]
            value = quantity.si(dimension) / UNIT_SCALE[unit]
            if not lo <= value <= hi:
                out.append(
                    f"{self.name}: {path} = {quantity.value:g} {quantity.unit} is far outside any shipping GPU "
                    f"({lo:g}-{hi:g} {unit}); predictions for it are extrapolations"
                )
        return out

    # ---- SI accessors -------------------------------------------------------------------------
    def peak_flops(self, precision: str, *, sparse: bool = False) -> float | None:
        """Peak tensor throughput in flop/s for ``precision`` (None when the GPU lacks it)."""
        table = self.peak_sparse if sparse else self.peak_dense
        quantity = table.get(precision)
        return None if quantity is None else quantity.si("flop_rate")

    def supports(self, precision: str) -> bool:
        """Whether the tensor cores run ``precision`` natively (e.g. no nvfp4 on Hopper)."""
        return precision in self.peak_dense

    @property
    def hbm_capacity_bytes(self) -> float:
        """Marketed HBM capacity in bytes."""
        return self.hbm_capacity.si("bytes")

    @property
    def hbm_usable_bytes(self) -> float:
        """Driver-reported memory in bytes (the base of gpu_memory_utilization)."""
        return self.hbm_usable.si("bytes")

    @property
    def hbm_bandwidth_Bps(self) -> float:
        """Peak HBM bandwidth in bytes/s."""
        return self.hbm_bandwidth.si("bandwidth")

    @property
    def scaleup_bandwidth_Bps(self) -> float:
        """Scale-up (NVLink) bandwidth per GPU and direction, bytes/s."""
        return self.scaleup.bandwidth_per_direction.si("bandwidth")

    @property
    def scaleup_domain_gpus(self) -> int:
        """GPUs in one scale-up domain (72 for NVL72, 8 for HGX)."""
        return int(self.scaleup.domain_size.value)

    @property
    def node_gpus(self) -> int:
        """GPUs in one node (4 per NVL72 compute tray, 8 per HGX server)."""
        node = self.scaleup.node_size
        return int(node.value) if node is not None else self.scaleup_domain_gpus

    @property
    def scaleout_bandwidth_Bps(self) -> float:
        """Scale-out (NIC) bandwidth per GPU and direction, bytes/s."""
        return self.scaleout.bandwidth_per_direction.si("bandwidth")

    @property
    def sm_count_value(self) -> int:
        """Number of SMs."""
        return int(self.sm_count.value)

    @property
    def generation(self) -> str:
        """The GPU generation kernel efficiencies are shared within: 'blackwell', 'hopper' or 'other'."""
        if self.is_blackwell:
            return "blackwell"
        return "hopper" if self.is_hopper else "other"

    @property
    def is_hopper(self) -> bool:
        """True for SM90 GPUs (H100, H200), where vLLM's FlashMLA and FlashAttention MLA kernels run."""
        return self.compute_capability.startswith("9.")

    @property
    def is_blackwell(self) -> bool:
        """True for SM10x GPUs (B200, GB200, B300, GB300), which change vLLM's MLA backend."""
        return self.compute_capability.startswith("10.")

    def scaled(self, **factors: float) -> HardwareSpec:
        """A hypothetical copy with some numbers multiplied, for what-if studies.

        Keys: ``hbm_bandwidth``, ``hbm_capacity`` (scales usable memory too), ``flops`` (every
        precision), ``flops_<precision>`` (one precision), ``scaleup_bandwidth``, ``scaleout_bandwidth``.
        Changed numbers are marked ``what-if``.
        """
        data = self.model_dump(mode="python")

        def bump(q: dict, factor: float, label: str) -> dict:
            return {
                **q,
                "value": q["value"] * factor,
                "status": Status.what_if,
                "note": f"{label} x{factor:g} (what-if; was {q['value']:g} {q['unit']})",
            }

        for key, factor in factors.items():
            if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
                raise SpecError(f"scale factor must be a positive finite number, got {factor!r}", field=key)
            if key == "hbm_bandwidth":
                data["hbm_bandwidth"] = bump(data["hbm_bandwidth"], factor, key)
            elif key == "hbm_capacity":
                data["hbm_capacity"] = bump(data["hbm_capacity"], factor, key)
                data["hbm_usable"] = bump(data["hbm_usable"], factor, key)
            elif key == "flops":
                data["peak_dense"] = {p: bump(q, factor, key) for p, q in data["peak_dense"].items()}
            elif key.startswith("flops_") and key[6:] in data["peak_dense"]:
                p = key[6:]
                data["peak_dense"][p] = bump(data["peak_dense"][p], factor, key)
            elif key == "scaleup_bandwidth":
                data["scaleup"]["bandwidth_per_direction"] = bump(
                    data["scaleup"]["bandwidth_per_direction"], factor, key
                )
            elif key == "scaleout_bandwidth":
                data["scaleout"]["bandwidth_per_direction"] = bump(
                    data["scaleout"]["bandwidth_per_direction"], factor, key
                )
            else:
                allowed = [*SCALE_KEYS] + [f"flops_{p}" for p in data["peak_dense"]]
                raise SpecError(f"cannot scale '{key}'; allowed: {', '.join(allowed)}", field=key)
        suffix = ",".join(f"{k}x{v:g}" for k, v in factors.items())
        data["name"] = f"{self.name}[{suffix}]" if suffix else self.name
        return HardwareSpec.model_validate(data)


#: what-if factors ``HardwareSpec.scaled`` accepts, besides ``flops_<precision>``
SCALE_KEYS = ("hbm_bandwidth", "hbm_capacity", "flops", "scaleup_bandwidth", "scaleout_bandwidth")


def _check_unit(quantity: Quantity, dimension: str, field: str) -> None:
    try:
        quantity.si(dimension)
    except KeyError:
        raise ValueError(
            f"{field}: unit '{quantity.unit}' is not a {dimension.replace('_', ' ')} unit; "
            f"allowed: {', '.join(allowed_units(dimension))}"
        ) from None


def known_hardware() -> list[str]:
    """Names of the bundled hardware files."""
    return sorted(p.stem for p in data_dir("hardware").glob("*.yaml"))


def load_hardware(name_or_path: str | Path) -> HardwareSpec:
    """Load a hardware spec by bundled name (``gb300``) or by path to a YAML file.

    Raises ``UnknownNameError`` listing the known names, or ``SpecError`` naming the file and field.
    Results are cached per (name or path, file time); specs are immutable.
    """
    path = Path(name_or_path)
    stamp = path.stat().st_mtime if path.exists() else 0.0
    return _load_hardware_cached(str(name_or_path), stamp)


@functools.lru_cache(maxsize=64)
def _load_hardware_cached(name_or_path: str, _stamp: float) -> HardwareSpec:
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") or path.exists()):
        candidate = data_dir("hardware") / f"{str(name_or_path).lower()}.yaml"
        if not candidate.exists():
            # product names as tables write them ('NVIDIA GB300 NVL72', 'H200-SXM'): one word naming a bundled GPU
            words = set(re.split(r"[^a-z0-9]+", str(name_or_path).lower())) & set(known_hardware())
            if len(words) != 1:
                raise UnknownNameError("hardware", str(name_or_path), known_hardware())
            candidate = data_dir("hardware") / f"{words.pop()}.yaml"
        path = candidate
    data = load_yaml_file(path)
    try:
        return HardwareSpec.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError
        raise validation_error_to_spec_error(exc, path) from None
