"""vLLM V1's scheduler as plain Python/numpy (no SimPy): running first, then FCFS admission, chunked prefill.

Mirrors ``vllm/v1/core/sched/scheduler.py`` (0.14.1) for the FCFS policy:

* Phase A serves running requests in admission order, each getting ``min(remaining, token budget)``
  new tokens (a decode needs 1, or 1 + k with k speculative tokens). KV blocks are allocated per chunk;
  when they run out the most recently admitted running request is preempted (recompute: its blocks are
  freed, its computed tokens reset, and it goes to the front of the waiting queue).
* Phase B, only if nothing was preempted, admits waiting requests in FCFS order while the token budget,
  ``max_num_seqs`` and free blocks allow; the last admitted request may get a partial chunk. A request
  that does not fit blocks the queue (head-of-line).
* A step that completes a request's prompt samples its next token; partial prefill chunks emit nothing.

Output tokens are counted when scheduled (vLLM's placeholders), so the same logic serves synchronous
and asynchronous scheduling; the engine decides when ``schedule`` is called.

Running requests live in numpy arrays kept in admission order, so a step over hundreds of decoding
requests costs a few array operations; Phase A's in-order budget is a cumulative sum. Only state
changes (admission, preemption, finish) touch Python objects. When blocks run short, Phase A falls back
to the literal sequential loop so preemption picks exactly vLLM's victims.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from perfsim.serving.request import Request

#: per running request: ids, token counts (``sampled`` includes in-flight placeholders and optimistic drafts;
#: ``flight`` is the drafts of in-flight steps not yet verified) and KV blocks held
#: rows of the running-request arrays before the first doubling
INITIAL_ROWS = 64
_FIELDS = ("rid", "seq", "prompt", "computed", "sampled", "flight", "emitted", "maxtok", "blocks")


@dataclass
class SpecStats:
    """Speculative-decoding counters as vLLM's SpecDecodingStats keeps them (drafts actually scheduled)."""

    num_drafts: int = 0  # verify steps of requests that carried at least one draft
    draft_tokens: int = 0
    accepted_by_position: list[int] = field(default_factory=list)


@dataclass
class ScheduledBatch:
    """One step's schedule: new tokens and prior context per scheduled request, and who samples.

    ``sample_seq`` identifies (by admission sequence number) the requests whose step samples a token;
    ``sample_drafts`` is how many speculative draft tokens each of them verifies in this step.
    """

    new_tokens: np.ndarray
    context: np.ndarray
    sample_seq: np.ndarray
    sample_drafts: np.ndarray
    preempted: int = 0
    repeat: int = 1  # > 1: a block of identical pure-decode steps (every running request, one token each)

    def __len__(self) -> int:
        return int(self.new_tokens.size)


EMPTY_I = np.zeros(0, dtype=np.int64)


class Scheduler:
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
        self.free_blocks = num_blocks
        self.num_blocks = num_blocks
        self.max_model_len = max_model_len
        self.k = num_spec_tokens
        self.accept = accept or (lambda m: np.zeros(m, dtype=np.int64))
        self.spec_stats = spec_stats or SpecStats()
        if len(self.spec_stats.accepted_by_position) < num_spec_tokens:
            self.spec_stats.accepted_by_position = [0] * num_spec_tokens
        self.hold_finished = hold_finished
        self._held_blocks: dict[int, int] = {}
        self.waiting: deque[Request] = deque()
        self.objs: dict[int, Request] = {}
        self._preempted_in_flight: dict[int, Request] = {}
        #: P/D decode side: requests whose KV blocks are allocated and whose KV is being pulled
        self.receiving: list[Request] = []
        #: called with a request once its blocks for a remote KV pull are allocated (starts the transfer)
        self.on_remote_alloc: Callable[[Request], None] | None = None
        self.num_preemptions = 0
        self.n = 0
        self._next_seq = 0
        self.a = {f: np.zeros(INITIAL_ROWS, dtype=np.int64) for f in _FIELDS}

    # ---- queue -------------------------------------------------------------------------------
    def add(self, req: Request) -> None:
        """A new request enters the waiting queue."""
        req.state = "waiting"
        self.waiting.append(req)

    @property
    def num_running(self) -> int:
        """Requests in the running set."""
        return self.n

    def has_work(self) -> bool:
        """True when any request waits, receives its KV, or runs."""
        return bool(self.waiting) or self.n > 0 or bool(self.receiving)

    def remote_kv_ready(self, req: Request) -> None:
        """The pulled KV of ``req`` arrived: it rejoins the head of the waiting queue (its blocks stay)."""
        self.receiving.remove(req)
        req.needs_remote_kv = False
        self.waiting.appendleft(req)

    def release(self, request_id: int) -> None:
        """Free the KV blocks a finished request kept (``hold_finished``), e.g. once P/D decode pulled them."""
        self.free_blocks += self._held_blocks.pop(request_id)

    def _needs_steps(self) -> np.ndarray:
        """Per running request: True unless its in-flight steps surely reach max_tokens (vLLM skips those)."""
        a, n = self.a, self.n
        return a["sampled"][:n] - a["flight"][:n] < a["maxtok"][:n]

    @property
    def kv_usage(self) -> float:
        """Fraction of KV blocks in use."""
        return 1.0 - self.free_blocks / self.num_blocks if self.num_blocks else 0.0

    def _blocks_for(self, tokens):
        """KV blocks that hold ``tokens`` tokens (int or array)."""
        return -(-tokens // self.block_size)

    # ---- array bookkeeping ----------------------------------------------------------------------
    def _append(self, req: Request, blocks: int) -> int:
        if self.n == self.a["rid"].size:
            self.a = {f: np.concatenate([v, np.zeros_like(v)]) for f, v in self.a.items()}
        i = self.n
        a = self.a
        a["rid"][i], a["seq"][i], a["prompt"][i] = req.id, self._next_seq, req.prompt_len
        a["computed"][i], a["sampled"][i], a["emitted"][i] = (
            req.num_computed,
            req.num_sampled,
            req.num_emitted,
        )
        a["maxtok"][i], a["blocks"][i], a["flight"][i] = req.max_tokens, req.blocks + blocks, 0
        req.blocks = 0
        self._next_seq += 1
        self.objs[req.id] = req
        req.state = "running"
        self.n += 1
        return i

    def _compact(self, keep: np.ndarray) -> None:
        m = int(keep.sum())
        for v in self.a.values():
            v[:m] = v[: self.n][keep]
        self.n = m

    def _preempt_last(self) -> None:
        """Preempt the most recently admitted running request (recompute; front of the waiting queue)."""
        i = self.n - 1
        a = self.a
        req = self.objs.pop(int(a["rid"][i]))
        self.free_blocks += int(a["blocks"][i])
        req.num_computed = 0
        req.num_emitted = int(a["emitted"][i])
        in_flight = int(a["sampled"][i]) > req.num_emitted
        # a token already being computed (async scheduling) still reaches the client, as in vLLM; optimistic
        # draft placeholders are dropped with the KV
        req.num_sampled = req.num_emitted + (1 if in_flight else 0)
        if in_flight:
            self._preempted_in_flight[int(a["seq"][i])] = req
        req.blocks = 0
        req.state = "waiting"
        req.preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(req)
        self.n -= 1

    # ---- one step ----------------------------------------------------------------------------
    def schedule(self) -> ScheduledBatch:
        """Decide the next step's batch (vLLM ``Scheduler.schedule``, FCFS)."""
        budget = self.max_num_batched_tokens
        k = self.k
        n = self.n
        a = self.a
        preempted = 0
        parts_new: list[np.ndarray] = []
        parts_ctx: list[np.ndarray] = []
        parts_seq: list[np.ndarray] = []
        parts_dec: list[np.ndarray] = []
        if n:
            prompt, computed, sampled = a["prompt"][:n], a["computed"][:n], a["sampled"][:n]
            active = self._needs_steps()  # else the in-flight steps finish it even if every draft is rejected
            need = prompt + sampled - computed
            decode = (need == 1) & (sampled > 0) & active
            if k:
                want = np.where(active, need + k * decode, 0)
                look = k * decode
            else:
                want = need * active
                look = 0
            if k and int((computed + want).max()) >= self.max_model_len:  # drafts stop at max_model_len - 1
                want = np.minimum(want, np.maximum(self.max_model_len - 1 - computed, 0))
            if int(want.sum()) <= budget:
                take = want
            else:  # in admission order, each takes what is left of the budget
                before = np.cumsum(want) - want
                take = np.minimum(np.maximum(budget - before, 0), want)
            new_blocks = np.maximum(self._blocks_for(computed + take + look) - a["blocks"][:n], 0)
            need_blocks = int(new_blocks.sum())
            if need_blocks <= self.free_blocks:
                self.free_blocks -= need_blocks
                a["blocks"][:n] += new_blocks
                ctx = computed.copy()
                computed += take
                sel = take > 0
                samples = sel & (computed >= prompt + sampled)
                # placeholders: the token this step samples, plus the drafts it verifies (optimistic)
                if k:
                    drafts = np.where(samples & decode, take - 1, 0)
                    sampled += samples + drafts
                    a["flight"][:n] += drafts
                    parts_dec.append(drafts[samples])
                else:
                    sampled += samples
                    parts_dec.append(np.zeros(int(samples.sum()), dtype=np.int64))
                budget -= int(take.sum())
                parts_new.append(take[sel])
                parts_ctx.append(ctx[sel])
                parts_seq.append(a["seq"][:n][samples])
            else:
                preempted, budget = self._phase_a_sequential(
                    budget, parts_new, parts_ctx, parts_seq, parts_dec
                )
        if not preempted:
            budget = self._admit(budget, parts_new, parts_ctx, parts_seq, parts_dec)
        if not parts_new:
            return ScheduledBatch(EMPTY_I, EMPTY_I, EMPTY_I, EMPTY_I, preempted)
        return ScheduledBatch(
            np.concatenate(parts_new),
            np.concatenate(parts_ctx),
            np.concatenate(parts_seq),
            np.concatenate(parts_dec),
            preempted,
        )

    # ---- blocks of identical decode steps ------------------------------------------------------------
    def decode_block_limit(self) -> int:
        """How many identical pure-decode steps could be scheduled back to back from here (0 if not steady).

        Steady means: nothing waits, every running request decodes one token per step (no speculative
        drafts), none runs out of tokens to sample within the block, and the block's new KV blocks fit.
        Such steps differ only in context lengths, so the engine may cost and apply them together.
        """
        n = self.n
        if self.k or self.waiting or n == 0 or n > self.max_num_batched_tokens:
            return 0
        a = self.a
        computed, sampled = a["computed"][:n], a["sampled"][:n]
        if np.any(a["prompt"][:n] + sampled - computed != 1) or np.any(sampled == 0):
            return 0
        limit = int((a["maxtok"][:n] - sampled).min())
        limit = min(limit, int((self.max_model_len - 1 - computed).min()))
        if limit < 2:
            return 0
        blocks = a["blocks"][:n]
        while (
            limit >= 2
            and int(np.maximum(self._blocks_for(computed + limit) - blocks, 0).sum()) > self.free_blocks
        ):
            limit //= 2
        return limit if limit >= 2 else 0

    def decode_block_contexts(self) -> np.ndarray:
        """Context lengths of the running requests before the next decode block."""
        return self.a["computed"][: self.n].copy()

    def schedule_decode_block(self, steps: int) -> ScheduledBatch:
        """Schedule ``steps`` identical decode steps at once (after ``decode_block_limit`` allowed them)."""
        n, a = self.n, self.a
        computed = a["computed"][:n]
        context = computed.copy()
        grow = np.maximum(self._blocks_for(computed + steps) - a["blocks"][:n], 0)
        self.free_blocks -= int(grow.sum())
        a["blocks"][:n] += grow
        computed += steps
        a["sampled"][:n] += steps
        return ScheduledBatch(
            np.ones(n, dtype=np.int64), context, a["seq"][:n].copy(), np.zeros(n, dtype=np.int64), 0, steps
        )

    def _phase_a_sequential(self, budget: int, parts_new, parts_ctx, parts_seq, parts_dec) -> tuple[int, int]:
        """The literal in-order Phase A loop, with LIFO preemption when blocks run out."""
        a, k = self.a, self.k
        new: list[int] = []
        ctx: list[int] = []
        rows: list[int] = []  # rows scheduled so far (their indices stay valid: victims come from the end)
        alloc: list[int] = []
        seqs: list[int] = []
        decs: list[int] = []  # drafts verified by each sampled entry
        added: list[
            int
        ] = []  # placeholders added to each scheduled row this step (undone if it is preempted)
        preempted = 0
        i = 0
        while i < self.n and budget > 0:
            computed, sampled = int(a["computed"][i]), int(a["sampled"][i])
            if sampled - a["flight"][i] >= a["maxtok"][i]:
                i += 1
                continue
            need = int(a["prompt"][i]) + sampled - computed
            decode = need == 1 and sampled > 0
            want = need + (k if decode else 0)
            take = min(want, budget, self.max_model_len - 1 - computed)
            if take <= 0:
                i += 1
                continue
            blocks_needed = self._blocks_for(computed + take + (k if decode else 0)) - int(a["blocks"][i])
            stop = False
            while blocks_needed > self.free_blocks:
                victim = self.n - 1
                if victim in rows:  # scheduled earlier in this step: give its tokens and blocks back
                    j = rows.index(victim)
                    budget += new[j]
                    a["computed"][victim] -= new[j]
                    a["sampled"][victim] -= added[j]
                    if added[j]:
                        k_seq = seqs.index(int(a["seq"][victim]))
                        del seqs[k_seq]
                        del decs[k_seq]
                    for lst in (new, ctx, rows, alloc, added):
                        del lst[j]
                self._preempt_last()
                preempted += 1
                if victim == i:
                    stop = True
                    break
            if stop:
                break
            if blocks_needed > 0:
                self.free_blocks -= blocks_needed
                a["blocks"][i] += blocks_needed
            new.append(take)
            ctx.append(computed)
            rows.append(i)
            alloc.append(blocks_needed)
            a["computed"][i] = computed + take
            if computed + take >= a["prompt"][i] + sampled:
                drafts = take - 1 if decode else 0
                a["sampled"][i] = sampled + 1 + drafts
                a["flight"][i] += drafts
                seqs.append(int(a["seq"][i]))
                decs.append(drafts)
                added.append(1 + drafts)
            else:
                added.append(0)
            budget -= take
            i += 1
        if new:
            parts_new.append(np.array(new, dtype=np.int64))
            parts_ctx.append(np.array(ctx, dtype=np.int64))
            parts_seq.append(np.array(seqs, dtype=np.int64))
            parts_dec.append(np.array(decs, dtype=np.int64))
        return preempted, budget

    def _admit(self, budget: int, parts_new, parts_ctx, parts_seq, parts_dec) -> int:
        """Phase B: FCFS admission of waiting requests (the last admitted may be chunked)."""
        new: list[int] = []
        ctx: list[int] = []
        seqs: list[int] = []
        while self.waiting and budget > 0 and self.n < self.max_num_seqs:
            req = self.waiting[0]
            if (
                req.needs_remote_kv
            ):  # P/D: allocate the prompt's blocks, then pull its KV from the prefill side
                blocks = self._blocks_for(req.prompt_len) - req.blocks
                if blocks > self.free_blocks:
                    break
                self.waiting.popleft()
                self.free_blocks -= blocks
                req.blocks += blocks
                self.receiving.append(req)
                if self.on_remote_alloc is not None:
                    self.on_remote_alloc(req)
                continue
            take = min(req.num_tokens - req.num_computed, budget)
            if take <= 0:
                break
            blocks = self._blocks_for(req.num_computed + take) - req.blocks
            if blocks > self.free_blocks:
                break  # head-of-line blocking: waiting requests never preempt
            self.waiting.popleft()
            self.free_blocks -= max(blocks, 0)
            i = self._append(req, max(blocks, 0))
            new.append(take)
            ctx.append(req.num_computed)
            self.a["computed"][i] = req.num_computed + take
            if req.num_computed + take >= req.num_tokens:
                self.a["sampled"][i] += 1
                seqs.append(int(self.a["seq"][i]))
            budget -= take
        if new:
            parts_new.append(np.array(new, dtype=np.int64))
            parts_ctx.append(np.array(ctx, dtype=np.int64))
            parts_seq.append(np.array(seqs, dtype=np.int64))
            parts_dec.append(np.zeros(len(seqs), dtype=np.int64))
        return budget

    def _accepted(self, drafts: np.ndarray) -> np.ndarray:
        """Draw accepted drafts for verifies of ``drafts`` drafts each, and count them as vLLM does."""
        acc = np.minimum(self.accept(drafts.size), drafts)
        st = self.spec_stats
        st.num_drafts += int(drafts.size)
        st.draft_tokens += int(drafts.sum())
        for pos in range(int(acc.max(initial=0))):
            st.accepted_by_position[pos] += int(np.count_nonzero(acc > pos))
        return acc

    def complete(self, batch: ScheduledBatch) -> tuple[np.ndarray, np.ndarray, list[Request]]:
        """Apply a finished step: (request ids that got a chunk, tokens in each chunk, finished requests)."""
        n = self.n
        if not batch.sample_seq.size:
            return EMPTY_I, EMPTY_I, []
        a = self.a
        seq = a["seq"][:n]
        rows = np.searchsorted(seq, batch.sample_seq)
        ok = rows < n
        ok[ok] = seq[rows[ok]] == batch.sample_seq[ok]
        finished: list[Request] = []
        extra_rids: list[int] = []
        extra_tokens: list[int] = []
        if not ok.all():  # preempted while this step ran: its tokens still reach the client (vLLM 0.14.1)
            for s, d in zip(batch.sample_seq[~ok].tolist(), batch.sample_drafts[~ok].tolist(), strict=True):
                req = self._preempted_in_flight.pop(int(s), None)
                if req is None:
                    continue
                accepted = int(self._accepted(np.array([d]))[0]) if d else 0
                emitted = min(1 + accepted, req.max_tokens - req.num_emitted)
                req.num_emitted += emitted
                req.num_sampled = req.num_emitted  # recomputed on resume, the accepted drafts included
                extra_rids.append(req.id)
                extra_tokens.append(emitted)
                if req.num_emitted >= req.max_tokens:
                    req.state = "finished"
                    self.waiting.remove(req)
                    finished.append(req)
        rows, drafts = rows[ok], batch.sample_drafts[ok]
        tokens = np.ones(rows.size, dtype=np.int64)
        if self.k and drafts.any():
            spec = drafts > 0
            drows = rows[spec]
            acc = self._accepted(drafts[spec])
            acc = np.maximum(np.minimum(acc, a["maxtok"][drows] - a["emitted"][drows] - 1), 0)
            tokens[spec] += acc
            a["flight"][drows] -= drafts[spec]
            rejected = drafts[spec] - acc  # optimistic draft placeholders and their KV are rolled back
            a["sampled"][drows] -= rejected
            a["computed"][drows] -= rejected
        a["emitted"][rows] += tokens * batch.repeat
        rids = a["rid"][rows]
        if extra_rids:
            rids = np.concatenate([rids, np.array(extra_rids, dtype=np.int64)])
            tokens = np.concatenate([tokens, np.array(extra_tokens, dtype=np.int64)])
        done_rows = rows[a["emitted"][rows] >= a["maxtok"][rows]]  # only rows that got tokens can finish
        if done_rows.size:
            for i in np.sort(done_rows).tolist():
                req = self.objs.pop(int(a["rid"][i]))
                req.num_emitted = int(a["emitted"][i])
                req.state = "finished"
                if self.hold_finished:
                    self._held_blocks[req.id] = int(a["blocks"][i])
                else:
                    self.free_blocks += int(a["blocks"][i])
                finished.append(req)
            keep = np.ones(n, dtype=bool)
            keep[done_rows] = False
            self._compact(keep)
        return rids, tokens, finished
