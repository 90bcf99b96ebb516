"""One step's schedule as the scheduler hands it to the engine, its builder, and what the step returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfsim.serving.request import Request

EMPTY_I = np.zeros(0, dtype=np.int64)


@dataclass(slots=True)
class ScheduledBatch:
    """One step's schedule: new tokens and prior context per scheduled request, and who samples.

    ``sample_seq`` identifies (by admission sequence number) the requests whose step samples a token;
    ``sample_drafts`` is how many speculative draft tokens each of them verifies in this step;
    ``num_preempted`` requests were preempted to make room; ``repeat`` > 1 stands for a block of that many
    identical pure-decode steps (every running request, one token each).
    """

    new_tokens: np.ndarray
    context: np.ndarray
    sample_seq: np.ndarray
    sample_drafts: np.ndarray
    num_preempted: int = 0
    repeat: int = 1

    def __len__(self) -> int:
        return int(self.new_tokens.size)


class BatchBuilder:
    """Collects the parts of a step's schedule (running requests first, then admissions)."""

    __slots__ = ("_new", "_context", "_seq", "_drafts")

    def __init__(self) -> None:
        self._new: list[np.ndarray] = []
        self._context: list[np.ndarray] = []
        self._seq: list[np.ndarray] = []
        self._drafts: list[np.ndarray] = []

    def add(
        self, new_tokens: np.ndarray, context: np.ndarray, sample_seq: np.ndarray, sample_drafts: np.ndarray
    ) -> None:
        """Append scheduled entries (new tokens, context) and the sampling entries (sequence, drafts)."""
        self._new.append(new_tokens)
        self._context.append(context)
        self._seq.append(sample_seq)
        self._drafts.append(sample_drafts)

    def build(self, num_preempted: int, repeat: int = 1) -> ScheduledBatch:
        """The batch (empty when nothing was added)."""
        if not self._new:
            return ScheduledBatch(
                new_tokens=EMPTY_I,
                context=EMPTY_I,
                sample_seq=EMPTY_I,
                sample_drafts=EMPTY_I,
                num_preempted=num_preempted,
            )
        if len(self._new) == 1:
            return ScheduledBatch(
                new_tokens=self._new[0],
                context=self._context[0],
                sample_seq=self._seq[0],
                sample_drafts=self._drafts[0],
                num_preempted=num_preempted,
                repeat=repeat,
            )
        return ScheduledBatch(
            new_tokens=np.concatenate(self._new),
            context=np.concatenate(self._context),
            sample_seq=np.concatenate(self._seq),
            sample_drafts=np.concatenate(self._drafts),
            num_preempted=num_preempted,
            repeat=repeat,
        )


@dataclass(slots=True)
class StepOutput:
    """What a completed step returns: request ids that got a chunk, tokens per chunk, finished requests."""

    request_ids: np.ndarray
    num_tokens: np.ndarray
    finished: list[Request]


NO_OUTPUT = StepOutput(request_ids=EMPTY_I, num_tokens=EMPTY_I, finished=[])
