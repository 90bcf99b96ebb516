"""Cost parameters of the links: collective and transfer bandwidths and latencies (NVLink, NIC, DeepEP).

They carry over between GPU generations (scope ``link``); ``CostParams`` inherits them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from perfsim.costs.param_field import param_field as _param


class LinkParams(BaseModel):
    """Achievable fractions of link bandwidth and fixed latencies of collectives and transfers."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    comm_eff: float = _param(
        0.70,
        0.3,
        0.95,
        "fraction",
        "link",
        "Fraction of link bandwidth that collectives and transfers reach (NVLink or NIC): NCCL all-gather / "
        "reduce-scatter reach 495-616 of 900 GB/s on 2-4 GB200 GPUs (vLLM's GB200 wide-EP post).",
    )
    comm_latency_s: float = _param(
        8e-6,
        0.0,
        1e-3,
        "s",
        "link",
        "Fixed latency of one point-to-point transfer over NVLink (a P/D KV pull's setup).",
    )
    custom_ar_latency_s: float = _param(
        6e-6,
        1e-6,
        30e-6,
        "s",
        "link",
        "Synchronization latency of vLLM's custom all-reduce (one round; one-shot pays it once, two-shot and "
        "symmetric-memory all-reduces twice): 6-8 us for small one-shot messages on H100, B200 and B300 (vLLM PRs "
        "#24111, #24532, #37756).",
    )
    nccl_latency_s: float = _param(
        20e-6,
        5e-6,
        100e-6,
        "s",
        "link",
        "Launch and synchronization latency of one NCCL collective inside CUDA graphs on NVLink (all-reduce, "
        "all-gather, reduce-scatter): 20-30 us for small messages on 8 H100 or B300 GPUs (vLLM PR #37756, "
        "Triton-distributed #57), 40-60 us eager on GB200 (vLLM's GB200 wide-EP post).",
    )
    nic_latency_s: float = _param(
        20e-6, 0.0, 1e-2, "s", "link", "Fixed latency of one collective or transfer crossing the NIC (RDMA)."
    )
    deepep_eff: float = _param(
        0.78,
        0.3,
        0.95,
        "fraction",
        "link",
        "Fraction of the NVLink or NIC bandwidth per direction that DeepEP's dispatch and combine reach: 153-158 "
        "GB/s of H800's 200 GB/s NVLink for the high-throughput kernels at EP8 (deepseek-ai/DeepEP README).",
    )
    deepep_latency_s: float = _param(
        40e-6,
        5e-6,
        200e-6,
        "s",
        "link",
        "Fixed time of one DeepEP dispatch or combine call beyond its bytes: DeepEP's low-latency EP8 rows (128 "
        "tokens, 77 us dispatch / 114 us combine on H800 NVLink) leave about 40 us each after the bytes.",
    )
