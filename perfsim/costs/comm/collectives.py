"""Collective communication times: all-reduce, all-gather, reduce-scatter, point-to-point transfers.

Alpha-beta model: a fixed latency plus bytes over the achievable link bandwidth. A group within one
scale-up domain (NVLink) uses the NVLink bandwidth per direction and NCCL's latency; a larger group crosses the
NIC. Ring algorithms move 2(n-1)/n of the message per GPU for an all-reduce and (n-1)/n for all-gather and
reduce-scatter. The tensor-parallel all-reduce picks vLLM's implementation by size (``allreduce``).
"""

from __future__ import annotations

from dataclasses import dataclass

from perfsim.costs.params import CostParams
from perfsim.specs.hardware import HardwareSpec


@dataclass(frozen=True)
class Link:
    """The link a collective runs over: bandwidth per GPU and direction (B/s) and fixed latency (s)."""

    name: str
    bandwidth_Bps: float
    latency_s: float


def link(hw: HardwareSpec, kind: str, params: CostParams) -> Link:
    """The achievable ``nvlink`` (scale-up) or ``nic`` (scale-out) link of one GPU."""
    if kind == "nvlink":
        return Link(
            name="nvlink",
            bandwidth_Bps=hw.scaleup_bandwidth_Bps * params.comm_eff,
            latency_s=params.comm_latency_s,
        )
    return Link(
        name="nic", bandwidth_Bps=hw.scaleout_bandwidth_Bps * params.comm_eff, latency_s=params.nic_latency_s
    )


def group_link(hw: HardwareSpec, group_gpus: int, params: CostParams) -> Link:
    """The link NCCL collectives of a group run over: NVLink when the group fits in one scale-up domain (with
    NCCL's own launch and synchronization latency), otherwise the NIC."""
    if group_gpus <= hw.scaleup_domain_gpus:
        return Link(
            name="nvlink",
            bandwidth_Bps=hw.scaleup_bandwidth_Bps * params.comm_eff,
            latency_s=params.nccl_latency_s,
        )
    return link(hw, "nic", params)


def all_reduce(message_bytes: float, group: int, link: Link) -> tuple[float, float]:
    """(time_s, bytes sent per GPU) of a ring all-reduce of ``message_bytes`` over ``group`` GPUs."""
    if group <= 1 or message_bytes <= 0:
        return 0.0, 0.0
    sent = 2 * (group - 1) / group * message_bytes
    return link.latency_s + sent / link.bandwidth_Bps, sent


def all_gather(total_bytes: float, group: int, link: Link) -> tuple[float, float]:
    """(time_s, bytes received per GPU) of an all-gather whose gathered result is ``total_bytes``."""
    if group <= 1 or total_bytes <= 0:
        return 0.0, 0.0
    moved = (group - 1) / group * total_bytes
    return link.latency_s + moved / link.bandwidth_Bps, moved


def reduce_scatter(total_bytes: float, group: int, link: Link) -> tuple[float, float]:
    """(time_s, bytes sent per GPU) of a reduce-scatter of a ``total_bytes`` input per GPU."""
    return all_gather(total_bytes, group, link)


def transfer(message_bytes: float, link: Link) -> float:
    """Time (s) of a point-to-point transfer (e.g. a request's KV cache from prefill to decode)."""
    if message_bytes <= 0:
        return 0.0
    return link.latency_s + message_bytes / link.bandwidth_Bps
