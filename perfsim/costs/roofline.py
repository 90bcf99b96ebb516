"""From counted work to time: a roofline per operator, with the bound that decides it.

An operator's time is the largest of its compute time (flops / (peak x efficiency)), its memory time
(bytes / (HBM bandwidth x efficiency)), its special-function time (exponentials / SFU rate) and its
communication time; fixed overheads are added by the step model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class OpTime:
    """One operator of a step on one GPU, summed over the layers it appears in.

    ``time_s`` in seconds; ``flops``, ``bytes`` (HBM) and ``comm_bytes`` (sent over links) are totals
    over ``layers`` layers. ``bound`` says what limits it: compute, memory, sfu, communication or overhead.
    ``category`` groups operators for breakdowns (attention, moe, dense, comm, ...). ``kernels`` is how many
    kernels the operator launches per layer; ``launch`` says where they run: ``graph`` (captured in CUDA graphs),
    ``attention`` (inside vLLM's attention custom op, launched eagerly between piecewise graph pieces) or
    ``eager`` (always launched from the CPU, e.g. the logits and the sampler).
    """

    name: str
    category: str
    layers: int
    time_s: float
    flops: float
    bytes: float
    comm_bytes: float
    bound: str
    dtype: str = ""
    kernels: int = 1
    launch: str = "graph"

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        return {
            "name": self.name,
            "category": self.category,
            "layers": self.layers,
            "time_s": self.time_s,
            "flops": self.flops,
            "bytes": self.bytes,
            "comm_bytes": self.comm_bytes,
            "bound": self.bound,
            "dtype": self.dtype,
            "kernels": self.kernels,
            "launch": self.launch,
        }


def with_kernels(op: OpTime, kernels: int) -> OpTime:
    """The same operator standing for ``kernels`` kernels per layer."""
    return dataclasses.replace(op, kernels=kernels)


def roofline(
    flops: float,
    flops_per_s: float,
    bytes_: float,
    bytes_per_s: float,
    exps: float = 0.0,
    exps_per_s: float = 0.0,
    exp_serial: float = 0.0,
    mem_serial: float = 0.0,
) -> tuple[float, str]:
    """Time (s) and bound of an operator from its work and the achievable rates.

    Overlapping units hide the shorter time under the longer one only in part: ``exp_serial`` is the fraction
    of the shorter of the tensor-core and the exponential (SFU) times left exposed, ``mem_serial`` that of the
    shorter of the compute and memory times (0: the ideal roofline's perfect overlap; 1: one after the other).
    """
    t_compute = flops / flops_per_s if flops else 0.0
    t_memory = bytes_ / bytes_per_s if bytes_ else 0.0
    t_sfu = exps / exps_per_s if exps and exps_per_s else 0.0
    t_core = max(t_compute, t_sfu) + exp_serial * min(t_compute, t_sfu)
    exposed = mem_serial * min(t_core, t_memory)
    if t_core >= t_memory:
        return t_core + exposed, "compute" if t_compute >= t_sfu else "sfu"
    return t_memory + exposed, "memory"


def size_efficiency(rows: float, peak_fraction: float, half_rows: float) -> float:
    """Fraction of peak a kernel with ``rows`` rows reaches: saturating, half of the max at ``half_rows``."""
    if rows <= 0:
        return peak_fraction
    return peak_fraction * rows / (rows + half_rows)


def achievable_bandwidth(bandwidth_Bps: float, nbytes: float, bytes_half: float) -> float:
    """Bandwidth (B/s) one kernel moving ``nbytes`` reaches: short kernels never reach full speed
    (half of ``bandwidth_Bps`` at ``bytes_half`` bytes; 0 = always full speed)."""
    return bandwidth_Bps * nbytes / (nbytes + bytes_half) if bytes_half > 0 and nbytes > 0 else bandwidth_Bps


def gemm_efficiency(
    m: float, n: float, k: float, peak_fraction: float, m_half: float, nk_half: float
) -> float:
    """Fraction of peak of an (m x k) @ (k x n) GEMM: saturating in each dimension.

    Small M wastes tile rows; small N leaves SMs idle (wave quantization); short K leaves too few
    k-iterations to hide each tile's prologue and epilogue. With ``nk_half`` = 512 the shape reproduces
    DeepGEMM's published H800 FP8 table (K = 512 reaches about half the throughput of K = 16,384).
    """
    eff = size_efficiency(m, peak_fraction, m_half)
    if nk_half > 0:
        eff *= n / (n + nk_half) * k / (k + nk_half)
    return eff
