"""The running requests of one scheduler as a columnar table: one numpy int64 column per counter.

Rows stay in admission order (vLLM's ``running`` list), so a step over hundreds of decoding requests costs a
few array operations and vLLM's in-order token budget is a cumulative sum. Only admissions, preemptions and
finishes touch Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfsim.serving.request import Request, RequestStatus

#: rows of the table before the first doubling
INITIAL_ROWS = 64

COLUMNS = (
    "request_id",
    "admit_seq",  # admission sequence number: identifies a row across steps (rows move when others finish)
    "num_prompt_tokens",
    "max_tokens",
    "num_computed_tokens",
    "num_output_tokens",  # outputs of completed steps
    "num_output_placeholders",  # outputs of scheduled, not yet completed steps, drafts included
    "num_draft_placeholders",  # the MTP drafts among the placeholders (not yet verified)
    "num_blocks",
)


class RunningRequests:
    """Columns of the running requests; ``n`` rows are in use, each column is ``column[:n]``."""

    __slots__ = (*COLUMNS, "n", "requests")
    request_id: np.ndarray
    admit_seq: np.ndarray
    num_prompt_tokens: np.ndarray
    max_tokens: np.ndarray
    num_computed_tokens: np.ndarray
    num_output_tokens: np.ndarray
    num_output_placeholders: np.ndarray
    num_draft_placeholders: np.ndarray
    num_blocks: np.ndarray

    def __init__(self) -> None:
        self.n = 0
        self.requests: dict[int, Request] = {}
        for name in COLUMNS:
            setattr(self, name, np.zeros(INITIAL_ROWS, dtype=np.int64))

    def _columns(self) -> list[np.ndarray]:
        return [getattr(self, name) for name in COLUMNS]

    def append(self, req: Request, admit_seq: int, num_blocks: int) -> int:
        """Add ``req`` as the last row (its counters copied in, ``num_blocks`` more KV blocks); returns the row."""
        if self.n == self.request_id.size:
            for name, column in zip(COLUMNS, self._columns(), strict=True):
                setattr(self, name, np.concatenate([column, np.zeros_like(column)]))
        i = self.n
        self.request_id[i] = req.request_id
        self.admit_seq[i] = admit_seq
        self.num_prompt_tokens[i] = req.num_prompt_tokens
        self.max_tokens[i] = req.max_tokens
        self.num_computed_tokens[i] = req.num_computed_tokens
        self.num_output_tokens[i] = req.num_output_tokens
        self.num_output_placeholders[i] = req.num_output_placeholders
        self.num_draft_placeholders[i] = 0
        self.num_blocks[i] = req.num_blocks + num_blocks
        req.num_blocks = 0
        req.status = RequestStatus.RUNNING
        self.requests[req.request_id] = req
        self.n += 1
        return i

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` is False, keeping the order of the others."""
        m = int(mask.sum())
        for column in self._columns():
            column[:m] = column[: self.n][mask]
        self.n = m

    def pop_last(self) -> tuple[Request, int]:
        """Remove the most recently admitted row: (its request, its row index before removal)."""
        i = self.n - 1
        req = self.requests.pop(int(self.request_id[i]))
        self.n -= 1
        return req, i


@dataclass(slots=True)
class RunningDemand:
    """What each running request wants this step (arrays over the running table's rows)."""

    want: np.ndarray  # new tokens, drafts included, capped at max_model_len - 1
    is_decode: np.ndarray  # one new token after its prompt (plus k drafts)
    lookahead: np.ndarray  # draft slots allocated beyond the scheduled tokens
    num_sampled: np.ndarray  # output tokens and placeholders before this step


def running_demand(r: RunningRequests, num_spec_tokens: int, max_model_len: int) -> RunningDemand:
    """What every running request wants this step, vLLM's ``num_new_tokens`` before the budget.

    ``num_spec_tokens`` drafts ride on each decode; no position may reach ``max_model_len``.
    """
    n, k = r.n, num_spec_tokens
    computed = r.num_computed_tokens[:n]
    sampled = r.num_output_tokens[:n] + r.num_output_placeholders[:n]
    # skip a request whose in-flight steps reach max_tokens even if every draft is rejected (vLLM does)
    needs_steps = sampled - r.num_draft_placeholders[:n] < r.max_tokens[:n]
    need = r.num_prompt_tokens[:n] + sampled - computed
    is_decode = (need == 1) & (sampled > 0) & needs_steps
    if k:
        want = np.where(needs_steps, need + k * is_decode, 0)
        lookahead = k * is_decode
        if int((computed + want).max()) >= max_model_len:  # drafts stop at max_model_len - 1
            want = np.minimum(want, np.maximum(max_model_len - 1 - computed, 0))
    else:
        want = need * needs_steps
        lookahead = np.zeros(n, dtype=np.int64)
    return RunningDemand(want=want, is_decode=is_decode, lookahead=lookahead, num_sampled=sampled)


def blocks_for(tokens, block_size: int):
    """KV blocks of ``block_size`` tokens that hold ``tokens`` tokens (int or array)."""
    return -(-tokens // block_size)
