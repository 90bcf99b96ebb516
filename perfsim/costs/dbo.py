"""Dual-batch overlap (vLLM ``--enable-dbo``): a step runs as two micro-batches on two CPU threads, and one
micro-batch's DeepEP dispatch and combine overlap the other's compute.

vLLM splits a step at half its padded tokens when every DP rank has at least the decode threshold (32 tokens,
decode-only steps) or the prefill threshold (512, steps with a prefill) [v1/worker/ubatch_utils.py,
gpu_ubatch_wrapper.py; config/parallel.py:170-184]. Each micro-batch runs the whole model, so weights are read
twice. Per MoE layer the compute stream runs both halves' compute and the communication stream both halves'
all-to-all: the step takes about ``max(C1 + C2, M1 + M2)`` plus one layer's fill (the first half's compute
before anything can be sent). DeepEP's high-throughput kernels hold 20 SMs while they run [all2all.py:262],
which slows the compute they overlap by ``SMs / (SMs - 20)``.
"""

from __future__ import annotations

import dataclasses

from perfsim.costs.roofline import OpTime
from perfsim.costs.step_cache import StaticPart, static_part

#: SMs DeepEP's high-throughput kernels occupy (vLLM passes DeepEP's default)
DEEPEP_HT_SMS = 20
#: operators DBO hides under the other micro-batch's compute
ALL2ALL_PREFIXES = ("moe_dispatch", "moe_combine")


def _merged(first: tuple[OpTime, ...], second: tuple[OpTime, ...]) -> list[OpTime]:
    """One operator per name for both micro-batches: work and time summed, kernels counted twice."""
    by_name: dict[str, OpTime] = {}
    for o in (*first, *second):
        seen = by_name.get(o.name)
        by_name[o.name] = (
            o
            if seen is None
            else dataclasses.replace(
                seen,
                time_s=seen.time_s + o.time_s,
                flops=seen.flops + o.flops,
                bytes=seen.bytes + o.bytes,
                comm_bytes=seen.comm_bytes + o.comm_bytes,
                kernels=seen.kernels + o.kernels,
            )
        )
    return list(by_name.values())


def all2all_s(part: StaticPart) -> float:
    """Seconds of a step part's MoE dispatch and combine."""
    return sum(o.time_s for o in part.ops if o.name.startswith(ALL2ALL_PREFIXES))


def overlapped_part(
    halves: tuple[StaticPart, StaticPart], dynamic_s: float, moe_layers: int, sm_slowdown: float
) -> StaticPart:
    """Both micro-batches' operators, plus a ``dbo_overlap`` operator of negative time: what the overlap hides.

    ``dynamic_s``: the step's context-dependent attention seconds (split evenly over the halves); ``sm_slowdown``:
    the factor the overlapped compute runs slower by (1 without SMs taken).
    """
    comm = [all2all_s(h) for h in halves]
    compute = [h.time_s - m + dynamic_s / 2 for h, m in zip(halves, comm, strict=True)]
    serial = sum(compute) + sum(comm)
    fill = min(compute[0] * sm_slowdown, comm[0]) / max(moe_layers, 1)
    overlapped = max(sm_slowdown * sum(compute), sum(comm)) + fill
    ops = _merged(halves[0].ops, halves[1].ops)
    hidden = OpTime(
        name="dbo_overlap",
        category="comm",
        layers=1,
        time_s=overlapped - serial,
        flops=0.0,
        bytes=0.0,
        comm_bytes=0.0,
        bound="overlap-compute" if sm_slowdown * sum(compute) >= sum(comm) else "overlap-comm",
        kernels=0,
    )
    return static_part([*ops, hidden])
