"""SimPy processes of the serving system: engine step loops, the benchmark client, P/D hand-off.

An ``Engine`` is one vLLM instance: ``dp`` schedulers (one per data-parallel rank) that step in lockstep;
each step's duration comes from the cost model for all ranks' batches. With async scheduling the next
step is scheduled when the current one starts (vLLM's one-step lookahead), so a request that arrives
during a step joins two steps later and a finished request's slot frees one step late.
The cost model and the scheduler are plain objects; only this module uses SimPy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import simpy

from perfsim.costs.step import StepCostModel
from perfsim.serving.request import Request
from perfsim.serving.scheduler import ScheduledBatch, Scheduler


@dataclass
class EngineStats:
    """Per-engine counters over a run (times in seconds)."""

    steps: int = 0
    busy_s: float = 0.0
    running_reqs_x_s: float = 0.0  # integral of running requests over busy time
    tokens: int = 0
    kv_usage_x_s: float = 0.0
    peak_kv_usage: float = 0.0
    category_s: dict[str, float] = field(default_factory=dict)
    drafts: int = 0
    accepted_by_position: list[int] = field(default_factory=list)

    def mean_running(self) -> float:
        """Mean running requests per rank, weighted by step time."""
        return self.running_reqs_x_s / self.busy_s if self.busy_s else 0.0

    def mean_kv_usage(self) -> float:
        """Mean KV block usage (0-1), weighted by step time."""
        return self.kv_usage_x_s / self.busy_s if self.busy_s else 0.0


class Acceptance:
    """Draws how many MTP draft tokens a verification step accepts (consecutive from the first)."""

    def __init__(self, rates: Sequence[float], seed: int, stats: EngineStats):
        self.rates = list(rates)
        self.rng = np.random.default_rng(seed)
        self.stats = stats
        stats.accepted_by_position = [0] * len(self.rates)

    def __call__(self) -> int:
        accepted = 0
        self.stats.drafts += 1
        draws = self.rng.random(len(self.rates))
        for i, p in enumerate(self.rates):
            if draws[i] >= p:
                break
            accepted += 1
            self.stats.accepted_by_position[i] += 1
        return accepted


class Engine:
    """One serving instance: DP schedulers in lockstep, stepped by the cost model inside SimPy."""

    def __init__(self, env: simpy.Environment, name: str, cost_model: StepCostModel, *, num_blocks: int,
                 on_emit: Callable[[Request, float], None], on_finish: Callable[[Request, float], None],
                 acceptance_rates: Sequence[float] = (), seed: int = 0, record_categories: bool = True):
        dep = cost_model.dep
        self.env, self.name, self.cost_model = env, name, cost_model
        self.async_scheduling = dep.async_scheduling
        self.stats = EngineStats()
        self.on_emit, self.on_finish = on_emit, on_finish
        self.record_categories = record_categories
        self.schedulers = []
        for rank in range(dep.dp):
            accept = Acceptance(acceptance_rates, seed + 7919 * rank, self.stats) if dep.num_speculative_tokens else None
            self.schedulers.append(Scheduler(
                max_num_seqs=dep.max_num_seqs, max_num_batched_tokens=dep.max_num_batched_tokens,
                num_blocks=num_blocks, block_size=dep.block_size, max_model_len=dep.max_model_len,
                num_spec_tokens=dep.num_speculative_tokens, accept=accept))
        self._wake = env.event()
        self._idle = True
        self.process = env.process(self._loop())

    # ---- requests in ---------------------------------------------------------------------------
    def load(self) -> int:
        """Requests waiting or running on this instance."""
        return sum(len(s.waiting) + len(s.running) for s in self.schedulers)

    def submit(self, req: Request) -> None:
        """Route a request to the DP rank with the lowest 4 x waiting + running (vLLM's DP load balancer)."""
        rank = min(range(len(self.schedulers)),
                   key=lambda r: 4 * len(self.schedulers[r].waiting) + len(self.schedulers[r].running))
        req.engine = rank
        self.schedulers[rank].add(req)
        if self._idle and not self._wake.triggered:
            self._wake.succeed()

    @property
    def num_preemptions(self) -> int:
        """Preemptions over all ranks."""
        return sum(s.num_preemptions for s in self.schedulers)

    # ---- the step loop ---------------------------------------------------------------------------
    def _schedule_all(self) -> list[ScheduledBatch]:
        return [s.schedule() for s in self.schedulers]

    def _loop(self):
        cm = self.cost_model
        pending: list[ScheduledBatch] | None = None
        while True:
            if pending is None or not any(len(b) for b in pending):
                if not any(s.has_schedulable() for s in self.schedulers):
                    self._idle = True
                    self._wake = self.env.event()
                    yield self._wake
                    self._idle = False
                batches = self._schedule_all()
            else:
                batches = pending
            pending = None
            stats = [cm.stats(b.new_tokens, b.context) for b in batches]
            cost = cm.step(stats)
            dt = cost.total_s
            if self.async_scheduling:
                pending = self._schedule_all()  # scheduled while this step runs on the GPU
            self._record(cost, batches, dt)
            yield self.env.timeout(dt)
            now = self.env.now
            for sched, batch in zip(self.schedulers, batches, strict=True):
                emitted, finished = sched.complete(batch, now)
                for req in emitted:
                    self.on_emit(req, now)
                for req in finished:
                    self.on_finish(req, now)

    def _record(self, cost, batches: list[ScheduledBatch], dt: float) -> None:
        st = self.stats
        st.steps += 1
        st.busy_s += dt
        st.tokens += sum(b.num_tokens for b in batches)
        running = sum(len(s.running) for s in self.schedulers) / len(self.schedulers)
        st.running_reqs_x_s += running * dt
        usage = max(s.kv_usage for s in self.schedulers)
        st.kv_usage_x_s += usage * dt
        st.peak_kv_usage = max(st.peak_kv_usage, usage)
        if self.record_categories:
            gpu = cost.gpu_s or 1.0
            for cat, seconds in cost.by_category().items():
                st.category_s[cat] = st.category_s.get(cat, 0.0) + seconds / gpu * dt
