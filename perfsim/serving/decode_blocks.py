"""Blocks of identical one-token decode steps: when the scheduler may hand the engine several at once.

A block is steady when nothing waits, every running request decodes one token per step (no MTP drafts),
none runs out of tokens to sample within the block, and the block's new KV blocks fit. Such steps differ
only in context lengths, so the engine may cost and apply them together (``perfsim.costs.decode_block``).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from perfsim.serving.batch import BatchBuilder, ScheduledBatch
from perfsim.serving.request import Request
from perfsim.serving.running import RunningRequests, blocks_for, running_demand


class DecodeBlockScheduling:
    """The decode-block part of a scheduler (mixed into ``Scheduler``)."""

    running: RunningRequests
    waiting: deque[Request]
    num_spec_tokens: int
    max_num_batched_tokens: int
    max_model_len: int
    num_free_blocks: int
    block_size: int

    def decode_block_limit(self) -> int:
        """How many identical pure-decode steps could be scheduled back to back from here (0 if not steady).

        Steady means: nothing waits, every running request decodes one token per step (no speculative
        drafts), none runs out of tokens to sample within the block, and the block's new KV blocks fit.
        Such steps differ only in context lengths, so the engine may cost and apply them together.
        """
        r, n = self.running, self.running.n
        if self.num_spec_tokens or self.waiting or n == 0 or n > self.max_num_batched_tokens:
            return 0
        demand = running_demand(self.running, self.num_spec_tokens, self.max_model_len)
        if not demand.is_decode.all():
            return 0
        computed = r.num_computed_tokens[:n]
        limit = min(
            int((r.max_tokens[:n] - demand.num_sampled).min()), int((self.max_model_len - 1 - computed).min())
        )
        blocks = r.num_blocks[:n]
        while (
            limit >= 2
            and int(np.maximum(blocks_for(computed + limit, self.block_size) - blocks, 0).sum())
            > self.num_free_blocks
        ):
            limit //= 2
        return limit if limit >= 2 else 0

    def decode_block_contexts(self) -> np.ndarray:
        """Context lengths of the running requests before the next decode block."""
        return self.running.num_computed_tokens[: self.running.n].copy()

    def schedule_decode_block(self, steps: int) -> ScheduledBatch:
        """Schedule ``steps`` identical decode steps at once (after ``decode_block_limit`` allowed them)."""
        r, n = self.running, self.running.n
        computed = r.num_computed_tokens[:n]
        context = computed.copy()
        grow = np.maximum(blocks_for(computed + steps, self.block_size) - r.num_blocks[:n], 0)
        self.num_free_blocks -= int(grow.sum())
        r.num_blocks[:n] += grow
        computed += steps
        r.num_output_placeholders[:n] += steps
        out = BatchBuilder()
        out.add(np.ones(n, dtype=np.int64), context, r.admit_seq[:n].copy(), np.zeros(n, dtype=np.int64))
        return out.build(0, repeat=steps)
