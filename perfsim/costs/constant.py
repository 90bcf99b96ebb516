"""A step-cost stand-in with a fixed time per step, for what-if studies and hand-checkable tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from perfsim.costs.batch import BatchStats, batch_stats
from perfsim.costs.interface import DecodeBlockProfile, StepCost, StepProfile
from perfsim.specs.deployment import ResolvedDeployment


class ConstantStepCost:
    """Every engine step takes ``step_s`` seconds (plus ``per_token_s`` per scheduled token of the largest rank)."""

    def __init__(self, dep: ResolvedDeployment, step_s: float, per_token_s: float = 0.0):
        self._dep = dep
        self.step_s = step_s
        self.per_token_s = per_token_s

    @property
    def dep(self) -> ResolvedDeployment:
        """The deployment whose steps are costed."""
        return self._dep

    def stats(self, new_tokens, context_tokens) -> BatchStats:
        """Batch statistics (decode threshold 1, no sparse cap)."""
        return batch_stats(new_tokens, context_tokens)

    def step(self, ranks: BatchStats | Sequence[BatchStats]) -> StepCost:
        """A step of fixed duration (the largest rank's tokens set the per-token part)."""
        batches = [ranks] if isinstance(ranks, BatchStats) else list(ranks)
        tokens = max((b.num_tokens for b in batches), default=0)
        total = self.step_s + self.per_token_s * tokens
        reqs = max((b.num_reqs for b in batches), default=0)
        return StepCost(
            total_s=total,
            gpu_s=total,
            launch_s=0.0,
            cpu_s=0.0,
            overhead_s=0.0,
            ops=(),
            num_tokens=tokens,
            padded_tokens=tokens,
            num_reqs=reqs,
            graph_mode="NONE",
        )

    def step_profile(self, ranks: Sequence[BatchStats]) -> StepProfile:
        """The fixed step as a profile (one category, 'constant')."""
        total = self.step(ranks).total_s
        return StepProfile(total_s=total, gpu_s=total, by_category_s={"constant": total})

    def decode_block_profile(self, contexts: Sequence[np.ndarray], steps: int) -> DecodeBlockProfile:
        """``steps`` identical decode steps of fixed duration."""
        tokens = max((c.size for c in contexts), default=0)
        t = self.step_s + self.per_token_s * tokens
        return DecodeBlockProfile(
            step_times_s=np.full(steps, t), gpu_s=t * steps, by_category_s={"constant": t * steps}
        )
