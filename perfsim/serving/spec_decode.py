"""MTP speculative decoding in the scheduler: draft acceptance draws and vLLM's acceptance counters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class SpecStats:
    """Speculative-decoding counters as vLLM's SpecDecodingStats keeps them (drafts actually scheduled)."""

    num_drafts: int = 0  # verify steps of requests that carried at least one draft
    num_draft_tokens: int = 0
    num_accepted_tokens_per_pos: list[int] = field(default_factory=list)

    def observe(self, num_drafts: np.ndarray, num_accepted: np.ndarray) -> None:
        """Count verify steps that carried ``num_drafts`` drafts each and accepted ``num_accepted`` of them."""
        self.num_drafts += int(num_drafts.size)
        self.num_draft_tokens += int(num_drafts.sum())
        for pos in range(int(num_accepted.max(initial=0))):
            self.num_accepted_tokens_per_pos[pos] += int(np.count_nonzero(num_accepted > pos))


class Acceptance:
    """Draws how many MTP draft tokens a verification step accepts (consecutive from the first).

    ``rates[i]`` is the probability that draft i + 1 is accepted given that drafts 1..i were: a verify step
    accepts the longest prefix of drafts whose draws all succeed.
    """

    def __init__(self, rates: Sequence[float], rng: np.random.Generator):
        self.rates = np.asarray(rates)
        self.rng = rng

    def __call__(self, m: int) -> np.ndarray:
        """Accepted drafts for each of ``m`` verified decodes (consecutive accepts from position 1)."""
        hits = self.rng.random((m, self.rates.size)) < self.rates
        return np.cumprod(hits, axis=1).sum(axis=1).astype(np.int64)


def reject_all(m: int) -> np.ndarray:
    """The acceptance of a scheduler without a drafter model: every draft rejected."""
    return np.zeros(m, dtype=np.int64)
