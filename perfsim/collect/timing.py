"""Timing helpers and shapes shared by the GPU and CPU kernel collectors."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from perfsim.collect.schema import KernelRow

#: DeepSeek-V3 (N, K) projection shapes per GPU at TP1 / TP2: fused q_a+kv_a, q_b, o_proj, expert
#: gate_up and down (TP1), dense MLP down, and a vocab slice of lm_head
DEEPSEEK_NK = [
    (2112, 7168),
    (24576, 1536),
    (7168, 16384),
    (4096, 7168),
    (7168, 2048),
    (7168, 9216),
    (16160, 7168),
]
TOKENS = [1, 16, 64, 256, 1024, 4096, 16384]


def median_time(fn: Callable[[], object], repeats: int, warmup: int, timer: str, sync=None) -> float:
    for _ in range(warmup):
        fn()
    if timer == "cuda":
        import torch

        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000.0)
        return statistics.median(times)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def kernel_row(
    ident: dict,
    op: str,
    dtype: str,
    seconds: float,
    flops: float,
    nbytes: float,
    repeats: int,
    warmup: int,
    **shape,
) -> KernelRow:
    return KernelRow(
        **ident,
        op=op,
        dtype=dtype,
        flops=flops,
        bytes=nbytes,
        median_s=seconds,
        repeats=repeats,
        warmup=warmup,
        tflops=flops / seconds / 1e12 if flops else 0.0,
        gbps=nbytes / seconds / 1e9 if nbytes else 0.0,
        **shape,
    )
