"""Units accepted in spec files and their factors to SI base units.

Every number in a hardware YAML carries a unit; the loader converts it to SI (flop/s, bytes, bytes/s,
Hz, W, counts) so the rest of perfsim never sees a prefix. Decimal prefixes follow vendor data sheets
(1 TB/s = 1e12 B/s); binary ones (KiB, MiB, GiB) are 2**10 multiples, as nvidia-smi reports memory.
"""

from __future__ import annotations

# dimension -> unit -> factor to the SI base of that dimension
UNITS: dict[str, dict[str, float]] = {
    "flop_rate": {  # floating-point operations per second
        "FLOPS": 1.0,
        "GFLOPS": 1e9,
        "TFLOPS": 1e12,
        "PFLOPS": 1e15,
        "TOPS": 1e12,  # integer ops (INT8), counted like flops
    },
    "bytes": {
        "B": 1.0,
        "KB": 1e3,
        "MB": 1e6,
        "GB": 1e9,
        "TB": 1e12,
        "KiB": 2.0**10,
        "MiB": 2.0**20,
        "GiB": 2.0**30,
    },
    "bandwidth": {  # bytes per second (bits per second for NICs are converted)
        "B/s": 1.0,
        "MB/s": 1e6,
        "GB/s": 1e9,
        "TB/s": 1e12,
        "Gb/s": 1e9 / 8,
        "Tb/s": 1e12 / 8,
    },
    "count": {"count": 1.0, "GPUs": 1.0, "SMs": 1.0},
    "frequency": {"Hz": 1.0, "MHz": 1e6, "GHz": 1e9},
    "power": {"W": 1.0, "kW": 1e3},
    "exp_rate": {"exp/s": 1.0, "Texp/s": 1e12},
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9},
}


def to_si(value: float, unit: str, dimension: str) -> float:
    """Convert ``value`` in ``unit`` to the SI base unit of ``dimension``.

    Raises ``KeyError`` when the unit does not belong to the dimension; callers turn that into a
    ``SpecError`` naming the file and field.
    """
    return value * UNITS[dimension][unit]


def allowed_units(dimension: str) -> list[str]:
    """Units accepted for a dimension, for error messages."""
    return list(UNITS[dimension])
