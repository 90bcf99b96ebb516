"""perfsim's prediction of one microbenchmarked kernel, from the same roofline pieces as the cost model.

Used to fit the size-dependent efficiency curves to measured kernels and to report per-operator errors.
"""

from __future__ import annotations

from perfsim.collect.schema import KernelRow
from perfsim.costs.comm import all_reduce, link
from perfsim.costs.params import CostParams
from perfsim.costs.roofline import achievable_bandwidth, gemm_efficiency, roofline
from perfsim.specs.hardware import HardwareSpec

#: which GEMM efficiency parameter a measured dtype informs (fp32 is the CPU test path's dtype)
EFFICIENCY_PARAM = {
    "nvfp4": "gemm_eff_nvfp4",
    "fp8": "gemm_eff_fp8",
    "bf16": "gemm_eff_bf16",
    "fp32": "gemm_eff_bf16",
}


def _peak(hw: HardwareSpec, dtype: str) -> float:
    peak = hw.peak_flops(dtype)
    if not peak:
        raise ValueError(f"{hw.name} lists no {dtype} peak")
    return peak


def _bandwidth(hw: HardwareSpec, p: CostParams, nbytes: float) -> float:
    bandwidth = hw.hbm_bandwidth_Bps * p.hbm_eff
    return achievable_bandwidth(bandwidth, nbytes, p.mem_ramp_s * bandwidth)


def predict_kernel(row: KernelRow, hw: HardwareSpec, p: CostParams) -> tuple[float, str]:
    """Predicted seconds and bound of one measured kernel on ``hw`` with parameters ``p``."""
    if row.op == "hbm_copy":
        return row.bytes / _bandwidth(hw, p, row.bytes), "memory"
    if row.op in ("gemm", "grouped_gemm"):
        eff = gemm_efficiency(
            row.m, row.n, row.k, getattr(p, EFFICIENCY_PARAM[row.dtype]), p.gemm_m_half_tokens, p.gemm_nk_half
        )
        return roofline(row.flops, _peak(hw, row.dtype) * eff, row.bytes, _bandwidth(hw, p, row.bytes))
    if row.op == "attention":
        eff = p.attn_decode_eff if row.seq_q == 1 else p.attn_prefill_eff
        dtype = "bf16" if row.dtype != "fp32" else "fp32"
        return roofline(row.flops, _peak(hw, dtype) * eff, row.bytes, _bandwidth(hw, p, row.bytes))
    if row.op == "all_reduce":
        return all_reduce(row.bytes, row.ranks, link(hw, "nvlink", p))[0], "communication"
    raise ValueError(f"unknown op {row.op}")


def parameters_for(rows: list[KernelRow]) -> list[str]:
    """The cost parameters a kernel file can inform."""
    names: list[str] = []

    def add(*items: str) -> None:
        names.extend(i for i in items if i not in names)

    for r in rows:
        if r.op == "hbm_copy":
            add("hbm_eff", "mem_ramp_s")
        elif r.op in ("gemm", "grouped_gemm"):
            add(EFFICIENCY_PARAM[r.dtype], "gemm_m_half_tokens", "gemm_nk_half")
        elif r.op == "attention":
            add("attn_decode_eff" if r.seq_q == 1 else "attn_prefill_eff")
        elif r.op == "all_reduce":
            add("comm_eff", "comm_latency_s")
    return names
