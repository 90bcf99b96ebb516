"""vLLM 0.14.1's tensor-parallel all-reduce: which implementation runs for a message, and its time.

``CudaCommunicator.all_reduce`` tries, in order [distributed/device_communicators/cuda_communicator.py:126-174]:
vLLM's custom all-reduce (world sizes 2, 4, 6, 8 in one node with NVLink; below its maximum size), then torch
symmetric-memory all-reduce (compute capability 9.0 or 10.0 with NVSwitch multicast; multimem or two-shot), then
NCCL. The custom all-reduce is one-shot (every rank reads every peer's buffer: (n-1) x S bytes, one
synchronization) for two ranks, or below 512 KiB (up to 4 ranks) / 256 KiB (up to 8 ranks), and two-shot
(reduce-scatter then all-gather: 2(n-1)/n x S, two synchronizations) above [csrc/custom_all_reduce.cuh
REDUCE_CASE]. Its maximum is 8 MiB, lowered per capability and world size when symmetric memory is available
[all_reduce_utils.py:30-61]; GB300 and B300 (10.3) have no entry in 0.14.1, so neither table applies there.
"""

from __future__ import annotations

from perfsim.costs.comm.collectives import Link

KiB, MiB = 2**10, 2**20
#: custom all-reduce default maximum message (bytes) [custom_all_reduce.py:59]
CUSTOM_AR_MAX_BYTES = 8 * MiB
#: custom all-reduce maximum when symmetric memory is available, by (compute capability, world size)
CUSTOM_AR_MAX_WITH_SYMM_MEM = {
    ("9.0", 2): 64 * MiB,
    ("9.0", 4): 32 * MiB,
    ("9.0", 6): MiB // 2,
    ("9.0", 8): MiB // 4,
    ("10.0", 2): 2 * MiB,
    ("10.0", 4): 2 * MiB,
    ("10.0", 6): MiB,
    ("10.0", 8): MiB,
}
#: symmetric-memory all-reduce maximum message and algorithm, by (compute capability, world size)
SYMM_MEM_MAX = {
    ("9.0", 2): (64 * MiB, "two_shot"),
    ("9.0", 4): (32 * MiB, "multimem"),
    ("9.0", 6): (64 * MiB, "multimem"),
    ("9.0", 8): (64 * MiB, "multimem"),
    ("10.0", 2): (8 * MiB, "two_shot"),
    ("10.0", 4): (32 * MiB, "two_shot"),
    ("10.0", 6): (128 * MiB, "multimem"),
    ("10.0", 8): (128 * MiB, "multimem"),
}
#: one-shot custom all-reduce below these sizes (beyond two ranks)
ONE_SHOT_MAX_4_RANKS, ONE_SHOT_MAX_8_RANKS = 512 * KiB, 256 * KiB
CUSTOM_AR_WORLD_SIZES = (2, 4, 6, 8)


def allreduce_algorithm(compute_capability: str, ranks: int, message_bytes: float, *, one_node: bool) -> str:
    """The implementation vLLM 0.14.1 runs: custom_one_shot, custom_two_shot, symm_multimem, symm_two_shot, nccl."""
    symm = (compute_capability, ranks) in SYMM_MEM_MAX and one_node
    custom_max = (
        CUSTOM_AR_MAX_WITH_SYMM_MEM.get((compute_capability, ranks), 0) if symm else CUSTOM_AR_MAX_BYTES
    )
    if one_node and ranks in CUSTOM_AR_WORLD_SIZES and message_bytes < custom_max:
        if (
            ranks == 2
            or (ranks <= 4 and message_bytes < ONE_SHOT_MAX_4_RANKS)
            or message_bytes < ONE_SHOT_MAX_8_RANKS
        ):
            return "custom_one_shot"
        return "custom_two_shot"
    if symm and message_bytes < SYMM_MEM_MAX[(compute_capability, ranks)][0]:
        return "symm_" + SYMM_MEM_MAX[(compute_capability, ranks)][1]
    return "nccl"


def allreduce_time(
    algorithm: str,
    message_bytes: float,
    ranks: int,
    link: Link,
    *,
    custom_latency_s: float,
    nccl_latency_s: float,
) -> tuple[float, float]:
    """(seconds, bytes sent per GPU) of one all-reduce of ``message_bytes`` over ``ranks`` GPUs.

    One-shot reads (n-1) x S with one synchronization (``custom_latency_s``); two-shot and symmetric-memory
    algorithms move 2(n-1)/n x S with two; NCCL rings move 2(n-1)/n x S after its own launch and
    synchronization latency (``nccl_latency_s``).
    """
    if ranks <= 1 or message_bytes <= 0:
        return 0.0, 0.0
    if algorithm == "custom_one_shot":
        sent = (ranks - 1) * message_bytes
        latency = custom_latency_s
    else:
        sent = 2 * (ranks - 1) / ranks * message_bytes
        latency = nccl_latency_s if algorithm == "nccl" else 2 * custom_latency_s
    return latency + sent / link.bandwidth_Bps, sent
