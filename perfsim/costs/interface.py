"""What the serving simulation needs from a cost model: the cost of one engine step for a batch.

``StepCostProvider`` is the whole interface the serving layer depends on: batch statistics for a step's
per-request (new, context) token counts, the step's profile for the batches of every DP rank, and the
profile of a block of identical one-token decode steps. ``StepCostModel`` (the physics) and
``ConstantStepCost`` (a fixed time per step, for what-ifs and hand-checked tests) implement it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from perfsim.costs.batch import BatchStats
from perfsim.costs.roofline import OpTime
from perfsim.specs.deployment import ResolvedDeployment


@dataclass(slots=True)
class StepProfile:
    """One step as the simulator sees it: its period, the GPU time and the GPU time by operator category (s).

    ``signature`` identifies which piece of the piecewise-linear cost the step lies on (slowest rank, what
    bounds the step and each context-dependent operator): steps with equal signatures interpolate exactly.
    """

    total_s: float
    gpu_s: float
    by_category_s: dict[str, float]
    signature: tuple = ()


@dataclass(slots=True)
class DecodeBlockProfile:
    """A block of identical one-token decode steps: each step's period (s), and the block's GPU seconds and
    seconds by category (scaled to step time), summed over the block."""

    step_times_s: np.ndarray
    gpu_s: float
    by_category_s: dict[str, float]


@dataclass(frozen=True)
class StepCost:
    """Time of one engine step (seconds) and its breakdown on the slowest GPU.

    ``total_s`` is the step period the scheduler sees: the GPU forward (``gpu_s``, or the CPU launch time
    ``launch_s`` if larger) combined with the engine core's CPU time ``cpu_s`` (overlapped with async
    scheduling), plus ``sync_s``, GPU-worker CPU time that a synchronizing step does not hide.
    ``overhead_s`` is the kernel-boundary time included in ``gpu_s``. ``ops`` are per-operator times on the
    slowest DP rank, summed over layers.
    """

    total_s: float
    gpu_s: float
    launch_s: float
    cpu_s: float
    overhead_s: float
    ops: tuple[OpTime, ...]
    num_tokens: int
    padded_tokens: int
    num_reqs: int
    graph_mode: str
    sync_s: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def flops(self) -> float:
        """Total flops of the slowest rank."""
        return sum(o.flops for o in self.ops)

    @property
    def bytes(self) -> float:
        """Total HBM bytes of the slowest rank."""
        return sum(o.bytes for o in self.ops)

    def by_category(self) -> dict[str, float]:
        """Seconds per operator category (attention, moe, dense, comm, ...), plus overheads."""
        out: dict[str, float] = {}
        for o in self.ops:
            out[o.category] = out.get(o.category, 0.0) + o.time_s
        out["overhead"] = out.get("overhead", 0.0) + self.overhead_s
        return out

    def by_bound(self) -> dict[str, float]:
        """Seconds per bound (compute, memory, sfu, communication, overhead)."""
        out: dict[str, float] = {"overhead": self.overhead_s}
        for o in self.ops:
            out[o.bound] = out.get(o.bound, 0.0) + o.time_s
        return out

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        return {
            "total_s": self.total_s,
            "gpu_s": self.gpu_s,
            "launch_s": self.launch_s,
            "cpu_s": self.cpu_s,
            "sync_s": self.sync_s,
            "overhead_s": self.overhead_s,
            "num_tokens": self.num_tokens,
            "padded_tokens": self.padded_tokens,
            "num_reqs": self.num_reqs,
            "graph_mode": self.graph_mode,
            "flops": self.flops,
            "bytes": self.bytes,
            "by_category_s": self.by_category(),
            "by_bound_s": self.by_bound(),
            "ops": [o.to_dict() for o in self.ops],
            "notes": list(self.notes),
        }


class StepCostProvider(Protocol):
    """The cost of engine steps, as the serving simulation uses it."""

    @property
    def dep(self) -> ResolvedDeployment:
        """The deployment whose steps are costed."""
        ...

    def stats(self, new_tokens, context_tokens) -> BatchStats:
        """Batch statistics of one rank's step from per-request new and context token counts."""
        ...

    def step(self, ranks: BatchStats | Sequence[BatchStats]) -> StepCost:
        """The full breakdown of one step (one batch per DP rank)."""
        ...

    def step_profile(self, ranks: Sequence[BatchStats]) -> StepProfile:
        """The period and GPU time of one step (one batch per DP rank): the simulator's fast path."""
        ...

    def decode_block_profile(self, contexts: Sequence[np.ndarray], steps: int) -> DecodeBlockProfile:
        """``steps`` identical one-token decode steps whose contexts (per DP rank, per request) grow by one."""
        ...
