"""vLLM V1's scheduler as plain Python (no SimPy): running first, then FCFS admission, chunked prefill.

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
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from perfsim.serving.request import Request


@dataclass
class ScheduledBatch:
    """One step's schedule: requests with their new tokens and contexts, and who samples a token."""

    reqs: list[Request] = field(default_factory=list)
    new_tokens: list[int] = field(default_factory=list)
    context: list[int] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)  # 0: no token, 1: first token after a prefill, 2: decode
    preempted: list[Request] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        """Tokens computed in this step."""
        return sum(self.new_tokens)

    def __len__(self) -> int:
        return len(self.reqs)


class Scheduler:
    """FCFS V1 scheduler of one engine (one DP rank) with its own KV block pool.

    ``num_blocks`` usable KV blocks of ``block_size`` tokens; ``num_spec_tokens`` draft tokens per decode;
    ``accept`` draws how many drafts a step accepted (called per decode request at completion).
    """

    def __init__(self, *, max_num_seqs: int, max_num_batched_tokens: int, num_blocks: int, block_size: int,
                 max_model_len: int, num_spec_tokens: int = 0, accept: Callable[[], int] | None = None):
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.block_size = block_size
        self.free_blocks = num_blocks
        self.num_blocks = num_blocks
        self.max_model_len = max_model_len
        self.k = num_spec_tokens
        self.accept = accept or (lambda: 0)
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.num_preemptions = 0

    # ---- queue -------------------------------------------------------------------------------
    def add(self, req: Request) -> None:
        """A new request enters the waiting queue."""
        req.state = "waiting"
        self.waiting.append(req)

    def has_work(self) -> bool:
        """True when any request waits or runs."""
        return bool(self.waiting) or bool(self.running)

    def has_schedulable(self) -> bool:
        """True when a schedule() call could produce tokens (not only finished-but-in-flight requests)."""
        if self.waiting:
            return True
        return any(r.num_sampled < r.max_tokens for r in self.running)

    @property
    def kv_usage(self) -> float:
        """Fraction of KV blocks in use."""
        return 1.0 - self.free_blocks / self.num_blocks if self.num_blocks else 0.0

    # ---- blocks ------------------------------------------------------------------------------
    def _blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def _free(self, req: Request) -> None:
        self.free_blocks += req.blocks
        req.blocks = 0

    def _preempt(self, victim: Request) -> None:
        self._free(victim)
        victim.num_computed = 0
        victim.num_sampled = victim.num_emitted  # in-flight placeholders are dropped with the KV
        victim.state = "waiting"
        victim.preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(victim)

    # ---- one step ----------------------------------------------------------------------------
    def schedule(self) -> ScheduledBatch:
        """Decide the next step's batch (vLLM ``Scheduler.schedule``, FCFS)."""
        batch = ScheduledBatch()
        budget = self.max_num_batched_tokens
        preempted = False
        scheduled_ids: set[int] = set()
        i = 0
        while i < len(self.running) and budget > 0:
            req = self.running[i]
            if req.num_sampled >= req.max_tokens:  # last token in flight (async); nothing to schedule
                i += 1
                continue
            n = req.num_tokens - req.num_computed
            decode = n == 1 and req.num_sampled > 0
            if decode:
                n += self.k
            n = min(n, budget, self.max_model_len - 1 - req.num_computed + (self.k if decode else 0))
            if n <= 0:
                i += 1
                continue
            lookahead = self.k if decode else 0
            need = self._blocks_for(req.num_computed + n + lookahead) - req.blocks
            victim_is_self = False
            while need > self.free_blocks:
                victim = self.running.pop()
                preempted = True
                if victim.id in scheduled_ids:  # already scheduled this step: give its tokens back
                    j = next(x for x, r in enumerate(batch.reqs) if r is victim)
                    budget += batch.new_tokens[j]
                    for lst in (batch.reqs, batch.new_tokens, batch.context, batch.samples):
                        del lst[j]
                self._preempt(victim)
                batch.preempted.append(victim)
                if victim is req:
                    victim_is_self = True
                    break
            if victim_is_self:
                break
            self._take(batch, req, n, need, decode)
            scheduled_ids.add(req.id)
            budget -= n
            i += 1

        if not preempted:
            while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
                req = self.waiting[0]
                n = min(req.num_tokens - req.num_computed, budget, self.max_model_len - 1 - req.num_computed)
                if n <= 0:
                    break
                need = self._blocks_for(req.num_computed + n) - req.blocks
                if need > self.free_blocks:
                    break  # head-of-line blocking: waiting requests never preempt
                self.waiting.popleft()
                req.state = "running"
                self.running.append(req)
                self._take(batch, req, n, need, False)
                budget -= n
        return batch

    def _take(self, batch: ScheduledBatch, req: Request, n: int, need: int, decode: bool) -> None:
        if need > 0:
            self.free_blocks -= need
            req.blocks += need
        batch.reqs.append(req)
        batch.new_tokens.append(n)
        batch.context.append(req.num_computed)
        req.num_computed += n
        samples = 0
        if req.num_computed >= req.num_tokens:
            req.num_sampled += 1  # output placeholder: the token this step will sample
            samples = 2 if decode else 1
        batch.samples.append(samples)

    def complete(self, batch: ScheduledBatch, now: float) -> tuple[list[Request], list[Request]]:
        """Apply a finished step: emit tokens at ``now``; return (requests that got tokens, finished ones)."""
        emitted: list[Request] = []
        finished: list[Request] = []
        for req, sampled in zip(batch.reqs, batch.samples, strict=True):
            if not sampled or req.state != "running":
                continue
            tokens = 1
            if self.k and sampled == 2:  # a verified decode: accepted drafts ride along
                accepted = min(self.accept(), self.k, req.max_tokens - req.num_emitted - 1)
                tokens += accepted
                req.num_sampled += accepted
                req.num_computed -= self.k - accepted
            req.num_emitted += tokens
            if req.first_token_time < 0:
                req.first_token_time = now
            req.chunk_times.append(now)
            emitted.append(req)
            if req.num_emitted >= req.max_tokens:
                req.state = "finished"
                req.finish_time = now
                self._free(req)
                self.running.remove(req)
                finished.append(req)
        return emitted, finished
