"""A step-cost stand-in with a fixed time per step, for what-if studies and hand-checkable tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from perfsim.costs.batch import BatchStats, batch_stats
from perfsim.costs.step import StepCost
from perfsim.specs.deployment import ResolvedDeployment


class ConstantStepCost:
    """Every engine step takes ``step_s`` seconds (plus ``per_token_s`` per scheduled token)."""

    def __init__(self, dep: ResolvedDeployment, step_s: float, per_token_s: float = 0.0):
        self.dep = dep
        self.step_s = step_s
        self.per_token_s = per_token_s

    def stats(self, new_tokens, context_tokens) -> BatchStats:
        """Batch statistics (decode threshold 1, no sparse cap)."""
        return batch_stats(new_tokens, context_tokens)

    def step(self, ranks: BatchStats | Sequence[BatchStats]) -> StepCost:
        """A step of fixed duration (the largest rank's tokens set the per-token part)."""
        batches = [ranks] if isinstance(ranks, BatchStats) else list(ranks)
        tokens = max((b.num_tokens for b in batches), default=0)
        total = self.step_s + self.per_token_s * tokens
        reqs = max((b.num_reqs for b in batches), default=0)
        return StepCost(total, total, 0.0, 0.0, 0.0, (), tokens, tokens, reqs, "NONE")

    def step_profile(self, ranks: Sequence[BatchStats]) -> tuple[float, float, dict[str, float]]:
        """(step seconds, GPU seconds, seconds by category) like ``StepCostModel.step_profile``."""
        total = self.step(ranks).total_s
        return total, total, {"constant": total}

    def decode_block_profile(self, contexts, steps: int):
        """Times of ``steps`` identical decode steps (constant), GPU seconds and categories."""
        tokens = max((c.size for c in contexts), default=0)
        t = self.step_s + self.per_token_s * tokens
        return np.full(steps, t), t * steps, {"constant": t * steps}
