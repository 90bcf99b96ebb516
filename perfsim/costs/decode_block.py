"""Blocks of identical one-token decode steps, costed together.

Within such a block every operator's work is linear in the step index (contexts grow by one per step), so
when no operator changes its bound between the first and the last step and no request crosses a context at
which the attention changes slope (the sparse top-k cap), the step times are exactly linear and two cost
evaluations give every step's time; otherwise every step is costed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from perfsim.costs.batch import BatchStats
from perfsim.costs.interface import DecodeBlockProfile, StepProfile


def crosses_breakpoint(contexts: Sequence[np.ndarray], steps: int, breakpoints: Sequence[int]) -> bool:
    """True when a request's keys (context + 1 .. context + steps) pass one of the ``breakpoints``."""
    for bp in breakpoints:
        for c in contexts:
            if np.any((c + 1 < bp) & (c + steps > bp)):
                return True
    return False


def decode_block_profile(
    profile: Callable[[Sequence[BatchStats]], StepProfile],
    stats: Callable[[np.ndarray, np.ndarray], BatchStats],
    contexts: Sequence[np.ndarray],
    steps: int,
    breakpoints: Sequence[int] = (),
) -> DecodeBlockProfile:
    """Step times (s) of ``steps`` one-token decode steps whose contexts grow by one per step.

    ``profile`` costs one step of per-rank batches and ``stats`` builds a rank's batch; ``contexts`` holds,
    per DP rank, the context of each decoding request before the first step.
    """
    ones = [np.ones(c.size, dtype=np.int64) for c in contexts]

    def at(j: int) -> StepProfile:
        return profile([stats(o, c + j) for o, c in zip(ones, contexts, strict=True)])

    first = at(0)
    last = at(steps - 1)
    linear = first.signature == last.signature and not crosses_breakpoint(contexts, steps, breakpoints)
    if linear:
        times = np.linspace(first.total_s, last.total_s, steps)
        ends: tuple[StepProfile, ...] = (first, last)
        weight = steps / 2
    else:
        profiles = [at(j) for j in range(steps)]
        times = np.array([pr.total_s for pr in profiles])
        ends = tuple(profiles)
        weight = 1.0
    gpu = 0.0
    by_category: dict[str, float] = {}
    for pr in ends:
        gpu += pr.gpu_s * weight
        scale = pr.total_s / (pr.gpu_s or 1.0) * weight
        for k, v in pr.by_category_s.items():
            by_category[k] = by_category.get(k, 0.0) + v * scale
    return DecodeBlockProfile(step_times_s=times, gpu_s=gpu, by_category_s=by_category)
