"""vLLM V1's scheduler as plain Python/numpy (no SimPy): running requests first, then FCFS admission.

Read it next to ``vllm/v1/core/sched/scheduler.py`` (0.14.1), FCFS policy. Invariant of every step: the
scheduled tokens never exceed ``max_num_batched_tokens``, the running requests never exceed ``max_num_seqs``,
and the KV blocks in use never exceed the pool.

* Running requests are served in admission order; each wants the tokens it has not computed (a decode wants
  1, or 1 + k with k MTP drafts) and gets what is left of the token budget. KV blocks are allocated per chunk;
  when they run out the most recently admitted running request is preempted (recompute: its blocks are freed,
  its computed tokens reset, and it goes to the front of the waiting queue).
* Waiting requests are admitted, only if no request was preempted in this step, in FCFS order while the
  budget, ``max_num_seqs`` and free blocks allow; the last one admitted may get a partial chunk; one that does
  not fit blocks the queue (head-of-line). A P/D decode request first gets its prompt's blocks and pulls the
  prefill instance's KV.
* A step that completes a request's prompt samples its next token; partial prefill chunks emit nothing.

Output tokens are counted as placeholders when scheduled (vLLM's async scheduling), so the same logic serves
synchronous and asynchronous scheduling; the engine decides when ``schedule`` is called. What each running
request wants is computed once, vectorized (``_running_demand``); it is fitted to the budget by a cumulative
sum when the blocks suffice, and by vLLM's literal in-order loop with preemption when they do not.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from perfsim.serving.batch import NO_OUTPUT, BatchBuilder, ScheduledBatch, StepOutput
from perfsim.serving.decode_blocks import DecodeBlockScheduling
from perfsim.serving.request import Request, RequestStatus
from perfsim.serving.running import RunningDemand, RunningRequests, blocks_for, running_demand
from perfsim.serving.spec_decode import SpecStats, reject_all


class Scheduler(DecodeBlockScheduling):
    """FCFS V1 scheduler of one engine (one DP rank) with its own KV block pool.

    ``num_blocks`` usable KV blocks of ``block_size`` tokens; ``num_spec_tokens`` draft tokens per decode;
    ``accept(m)`` draws, for m verified decodes, how many drafts each accepted (an int array); ``spec_stats``
    collects the acceptance counters. ``hold_finished``: finished requests keep their KV blocks until
    ``release`` (a P/D prefill instance, whose KV the decode side still has to pull).
    """

    def __init__(
        self,
        *,
        max_num_seqs: int,
        max_num_batched_tokens: int,
        num_blocks: int,
        block_size: int,
        max_model_len: int,
        num_spec_tokens: int = 0,
        accept: Callable[[int], np.ndarray] | None = None,
        spec_stats: SpecStats | None = None,
        hold_finished: bool = False,
    ):
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.num_free_blocks = num_blocks
        self.max_model_len = max_model_len
        self.num_spec_tokens = num_spec_tokens
        self.accept = accept or reject_all
        self.spec_stats = spec_stats or SpecStats()
        if len(self.spec_stats.num_accepted_tokens_per_pos) < num_spec_tokens:
            self.spec_stats.num_accepted_tokens_per_pos = [0] * num_spec_tokens
        self.hold_finished = hold_finished
        self._held_blocks: dict[int, int] = {}
        self.waiting: deque[Request] = deque()
        self.running = RunningRequests()
        self._preempted_in_flight: dict[int, Request] = {}
        #: P/D decode side: requests whose KV blocks are allocated and whose KV is being pulled
        self.receiving: list[Request] = []
        #: called with a request once its blocks for a remote KV pull are allocated (starts the transfer)
        self.on_remote_alloc: Callable[[Request], None] | None = None
        self.num_preemptions = 0
        self._next_admit_seq = 0

    # ---- queue -------------------------------------------------------------------------------
    def add_request(self, req: Request) -> None:
        """A new request enters the waiting queue."""
        req.status = RequestStatus.WAITING
        self.waiting.append(req)

    @property
    def num_running(self) -> int:
        """Requests in the running set."""
        return self.running.n

    def has_work(self) -> bool:
        """True when any request waits, receives its KV, or runs."""
        return bool(self.waiting) or self.running.n > 0 or bool(self.receiving)

    def remote_kv_ready(self, req: Request) -> None:
        """The pulled KV of ``req`` arrived: it rejoins the head of the waiting queue (its blocks stay)."""
        self.receiving.remove(req)
        req.do_remote_prefill = False
        req.status = RequestStatus.WAITING
        self.waiting.appendleft(req)

    def release(self, request_id: int) -> None:
        """Free the KV blocks a finished request kept (``hold_finished``), e.g. once P/D decode pulled them."""
        self.num_free_blocks += self._held_blocks.pop(request_id)

    @property
    def kv_usage(self) -> float:
        """Fraction of KV blocks in use."""
        return 1.0 - self.num_free_blocks / self.num_blocks if self.num_blocks else 0.0

    def blocks_for(self, tokens):
        """KV blocks that hold ``tokens`` tokens (int or array)."""
        return blocks_for(tokens, self.block_size)

    # ---- one step ----------------------------------------------------------------------------
    def schedule(self) -> ScheduledBatch:
        """Decide the next step's batch (vLLM ``Scheduler.schedule``, FCFS)."""
        out = BatchBuilder()
        token_budget = self.max_num_batched_tokens
        num_preempted = 0
        if self.running.n:
            demand = self._running_demand()
            scheduled = self._schedule_running_vectorized(demand, token_budget, out)
            if scheduled is None:
                token_budget, num_preempted = self._schedule_running_in_order(demand, token_budget, out)
            else:
                token_budget -= scheduled
        if not num_preempted:  # vLLM admits nothing in a step that preempted
            self._schedule_waiting(token_budget, out)
        return out.build(num_preempted)

    def _running_demand(self) -> RunningDemand:
        """What every running request wants this step, vLLM's ``num_new_tokens`` before the budget."""
        return running_demand(self.running, self.num_spec_tokens, self.max_model_len)

    def _schedule_running_vectorized(
        self, demand: RunningDemand, token_budget: int, out: BatchBuilder
    ) -> int | None:
        """Serve every running request in order from the budget when the KV blocks suffice; returns the tokens
        scheduled, or None (nothing changed) when blocks run short."""
        r, n = self.running, self.running.n
        want = demand.want
        total = int(want.sum())
        if total <= token_budget:
            take = want
        else:  # in admission order, each takes what is left of the budget
            before = np.cumsum(want) - want
            take = np.minimum(np.maximum(token_budget - before, 0), want)
            total = int(take.sum())
        computed = r.num_computed_tokens[:n]
        new_blocks = np.maximum(self.blocks_for(computed + take + demand.lookahead) - r.num_blocks[:n], 0)
        num_new_blocks = int(new_blocks.sum())
        if num_new_blocks > self.num_free_blocks:
            return None
        self.num_free_blocks -= num_new_blocks
        r.num_blocks[:n] += new_blocks
        context = computed.copy()
        computed += take
        scheduled = take > 0
        samples = scheduled & (computed >= r.num_prompt_tokens[:n] + demand.num_sampled)
        # placeholders: the token this step samples, plus the drafts it verifies (optimistic)
        drafts = np.where(samples & demand.is_decode, take - 1, 0) if self.num_spec_tokens else None
        r.num_output_placeholders[:n] += samples if drafts is None else samples + drafts
        if drafts is not None:
            r.num_draft_placeholders[:n] += drafts
        out.add(
            take[scheduled],
            context[scheduled],
            r.admit_seq[:n][samples],
            np.zeros(int(samples.sum()), dtype=np.int64) if drafts is None else drafts[samples],
        )
        return total

    def _schedule_running_in_order(
        self, demand: RunningDemand, token_budget: int, out: BatchBuilder
    ) -> tuple[int, int]:
        """vLLM's literal in-order loop over running requests, preempting the last admitted when blocks run out.

        Returns (token budget left, requests preempted).
        """
        r = self.running
        rows: list[int] = []  # rows scheduled so far (their indices stay valid: victims come from the end)
        new: list[int] = []
        context: list[int] = []
        added: list[int] = []  # placeholders added to each scheduled row (undone if it is preempted)
        sampled_seq: list[int] = []
        drafts_of: list[int] = []  # drafts verified by each sampled entry
        num_preempted = 0
        i = 0
        while i < r.n and token_budget > 0:
            take = min(int(demand.want[i]), token_budget)
            if take <= 0:
                i += 1
                continue
            computed = int(r.num_computed_tokens[i])
            blocks_needed = self.blocks_for(computed + take + int(demand.lookahead[i])) - int(r.num_blocks[i])
            victim_was_self = False
            while blocks_needed > self.num_free_blocks:
                victim = r.n - 1
                if victim in rows:  # scheduled earlier in this step: give its tokens and blocks back
                    j = rows.index(victim)
                    token_budget += new[j]
                    r.num_computed_tokens[victim] -= new[j]
                    r.num_output_placeholders[victim] -= added[j]
                    if added[j]:
                        s = sampled_seq.index(int(r.admit_seq[victim]))
                        del sampled_seq[s], drafts_of[s]
                    for lst in (rows, new, context, added):
                        del lst[j]
                self._preempt_last()
                num_preempted += 1
                if victim == i:
                    victim_was_self = True
                    break
            if victim_was_self:
                break
            if blocks_needed > 0:
                self.num_free_blocks -= blocks_needed
                r.num_blocks[i] += blocks_needed
            rows.append(i)
            new.append(take)
            context.append(computed)
            r.num_computed_tokens[i] = computed + take
            if computed + take >= r.num_prompt_tokens[i] + int(demand.num_sampled[i]):
                drafts = take - 1 if demand.is_decode[i] else 0
                r.num_output_placeholders[i] += 1 + drafts
                r.num_draft_placeholders[i] += drafts
                sampled_seq.append(int(r.admit_seq[i]))
                drafts_of.append(drafts)
                added.append(1 + drafts)
            else:
                added.append(0)
            token_budget -= take
            i += 1
        if new:
            out.add(
                np.array(new, dtype=np.int64),
                np.array(context, dtype=np.int64),
                np.array(sampled_seq, dtype=np.int64),
                np.array(drafts_of, dtype=np.int64),
            )
        return token_budget, num_preempted

    def _preempt_last(self) -> None:
        """Preempt the most recently admitted running request (recompute; front of the waiting queue)."""
        r = self.running
        req, i = r.pop_last()
        self.num_free_blocks += int(r.num_blocks[i])
        req.num_computed_tokens = 0
        req.num_output_tokens = int(r.num_output_tokens[i])
        in_flight = int(r.num_output_placeholders[i]) > 0
        # a token already being computed (async scheduling) still reaches the client, as in vLLM; optimistic
        # draft placeholders are dropped with the KV
        req.num_output_placeholders = 1 if in_flight else 0
        if in_flight:
            self._preempted_in_flight[int(r.admit_seq[i])] = req
        req.num_blocks = 0
        req.status = RequestStatus.PREEMPTED
        req.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(req)

    def _schedule_waiting(self, token_budget: int, out: BatchBuilder) -> None:
        """FCFS admission of waiting requests (the last admitted may be chunked)."""
        r = self.running
        new: list[int] = []
        context: list[int] = []
        sampled_seq: list[int] = []
        while self.waiting and token_budget > 0 and r.n < self.max_num_seqs:
            req = self.waiting[0]
            if (
                req.do_remote_prefill
            ):  # P/D: allocate the prompt's blocks, then pull its KV from the prefill side
                blocks = self.blocks_for(req.num_prompt_tokens) - req.num_blocks
                if blocks > self.num_free_blocks:
                    break
                self.waiting.popleft()
                self.num_free_blocks -= blocks
                req.num_blocks += blocks
                req.status = RequestStatus.WAITING_FOR_REMOTE_KVS
                self.receiving.append(req)
                if self.on_remote_alloc is not None:
                    self.on_remote_alloc(req)
                continue
            take = min(req.num_tokens_with_placeholders - req.num_computed_tokens, token_budget)
            if take <= 0:
                break
            blocks = self.blocks_for(req.num_computed_tokens + take) - req.num_blocks
            if blocks > self.num_free_blocks:
                break  # head-of-line blocking: waiting requests never preempt
            self.waiting.popleft()
            self.num_free_blocks -= max(blocks, 0)
            i = r.append(req, self._next_admit_seq, max(blocks, 0))
            self._next_admit_seq += 1
            new.append(take)
            context.append(req.num_computed_tokens)
            r.num_computed_tokens[i] = req.num_computed_tokens + take
            if req.num_computed_tokens + take >= req.num_tokens_with_placeholders:
                r.num_output_placeholders[i] += 1
                sampled_seq.append(int(r.admit_seq[i]))
            token_budget -= take
        if new:
            out.add(
                np.array(new, dtype=np.int64),
                np.array(context, dtype=np.int64),
                np.array(sampled_seq, dtype=np.int64),
                np.zeros(len(sampled_seq), dtype=np.int64),
            )

    # ---- a step completes ----------------------------------------------------------------------------
    def _accepted(self, num_drafts: np.ndarray) -> np.ndarray:
        """Draw accepted drafts for verifies of ``num_drafts`` drafts each, and count them as vLLM does."""
        accepted = np.minimum(self.accept(num_drafts.size), num_drafts)
        self.spec_stats.observe(num_drafts, accepted)
        return accepted

    def update_from_output(self, batch: ScheduledBatch) -> StepOutput:
        """Apply a finished step (vLLM ``update_from_output``): tokens per request, and who finished."""
        r, n = self.running, self.running.n
        if not batch.sample_seq.size:
            return NO_OUTPUT
        seq = r.admit_seq[:n]
        rows = np.searchsorted(seq, batch.sample_seq)
        ok = rows < n
        ok[ok] = seq[rows[ok]] == batch.sample_seq[ok]
        finished: list[Request] = []
        extra_ids: list[int] = []
        extra_tokens: list[int] = []
        if not ok.all():  # preempted while this step ran: its tokens still reach the client (vLLM 0.14.1)
            for s, d in zip(batch.sample_seq[~ok].tolist(), batch.sample_drafts[~ok].tolist(), strict=True):
                req = self._preempted_in_flight.pop(int(s), None)
                if req is None:
                    continue
                num_accepted = int(self._accepted(np.array([d]))[0]) if d else 0
                num_emitted = min(1 + num_accepted, req.max_tokens - req.num_output_tokens)
                req.num_output_tokens += num_emitted
                req.num_output_placeholders = 0  # recomputed on resume, the accepted drafts included
                extra_ids.append(req.request_id)
                extra_tokens.append(num_emitted)
                if req.num_output_tokens >= req.max_tokens:
                    req.status = RequestStatus.FINISHED
                    self.waiting.remove(req)
                    finished.append(req)
        rows, drafts = rows[ok], batch.sample_drafts[ok]
        tokens = np.ones(rows.size, dtype=np.int64)
        if self.num_spec_tokens and drafts.any():
            spec = drafts > 0
            drows = rows[spec]
            accepted = self._accepted(drafts[spec])
            accepted = np.maximum(
                np.minimum(accepted, r.max_tokens[drows] - r.num_output_tokens[drows] - 1), 0
            )
            tokens[spec] += accepted
            r.num_draft_placeholders[drows] -= drafts[spec]
            rejected = drafts[spec] - accepted  # optimistic draft placeholders and their KV are rolled back
            r.num_output_placeholders[drows] -= rejected
            r.num_computed_tokens[drows] -= rejected
        # every running request sampled (a decode step): the rows are 0..n-1, and slices beat fancy indexing
        index: slice | np.ndarray = slice(0, n) if rows.size == n else rows
        emitted = tokens * batch.repeat
        r.num_output_tokens[index] += emitted
        r.num_output_placeholders[index] -= emitted
        ids = (
            r.request_id[:n].copy() if isinstance(index, slice) else r.request_id[rows]
        )  # rows move on compaction
        if extra_ids:
            ids = np.concatenate([ids, np.array(extra_ids, dtype=np.int64)])
            tokens = np.concatenate([tokens, np.array(extra_tokens, dtype=np.int64)])
        done = r.num_output_tokens[index] >= r.max_tokens[index]  # only rows that got tokens can finish
        if done.any():
            done_rows = np.flatnonzero(done) if isinstance(index, slice) else rows[done]
            for i in np.sort(done_rows).tolist():
                req = r.requests.pop(int(r.request_id[i]))
                req.num_output_tokens = int(r.num_output_tokens[i])
                req.status = RequestStatus.FINISHED
                if self.hold_finished:
                    self._held_blocks[req.request_id] = int(r.num_blocks[i])
                else:
                    self.num_free_blocks += int(r.num_blocks[i])
                finished.append(req)
            keep = np.ones(n, dtype=bool)
            keep[done_rows] = False
            r.keep(keep)
        return StepOutput(request_ids=ids, num_tokens=tokens, finished=finished)
