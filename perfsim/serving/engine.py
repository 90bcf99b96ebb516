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

    def __call__(self, m: int) -> np.ndarray:
        """Accepted drafts for each of ``m`` verified decodes (consecutive accepts from position 1)."""
        hits = self.rng.random((m, len(self.rates))) < np.asarray(self.rates)
        run = np.cumprod(hits, axis=1)
        self.stats.drafts += m
        per_position = run.sum(axis=0)
        for i, count in enumerate(per_position):
            self.stats.accepted_by_position[i] += int(count)
        return run.sum(axis=1).astype(np.int64)


class Engine:
    """One serving instance: DP schedulers in lockstep, stepped by the cost model inside SimPy."""

    def __init__(self, env: simpy.Environment, name: str, cost_model: StepCostModel, *, num_blocks: int,
                 on_finish: Callable[[Request, float], None], log: list | None = None,
                 acceptance_rates: Sequence[float] = (), seed: int = 0, record_categories: bool = True,
                 allow_blocks: bool = False):
        dep = cost_model.dep
        self.env, self.name, self.cost_model = env, name, cost_model
        self.async_scheduling = dep.async_scheduling
        self.stats = EngineStats()
        self.on_finish = on_finish
        # (time or block of step-end times, request ids, tokens per chunk) of every step or decode block whose
        # chunks reach the client; a block means every request got one chunk at every step end
        self.log = log
        self.record_categories = record_categories
        self.allow_blocks = allow_blocks
        self._block_profile: tuple[float, dict[str, float]] = (0.0, {})
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
        return sum(len(s.waiting) + s.num_running for s in self.schedulers)

    def submit(self, req: Request) -> None:
        """Route a request to the DP rank with the lowest 4 x waiting + running (vLLM's DP load balancer)."""
        rank = min(range(len(self.schedulers)),
                   key=lambda r: 4 * len(self.schedulers[r].waiting) + self.schedulers[r].num_running)
        req.engine = rank
        self.schedulers[rank].add(req)
        self.notify()

    def notify(self) -> None:
        """Wake the step loop if it is idle (new work, KV arrived, or blocks freed)."""
        if self._idle and not self._wake.triggered:
            self._wake.succeed()

    @property
    def num_preemptions(self) -> int:
        """Preemptions over all ranks."""
        return sum(s.num_preemptions for s in self.schedulers)

    # ---- the step loop ---------------------------------------------------------------------------
    def _schedule_all(self, start_s: float) -> tuple[list[ScheduledBatch], np.ndarray | None]:
        """Schedule the next step on every rank, or a block of identical decode steps when that is exact.

        A block is used only when this engine is alone in the simulation and no other event (an arrival)
        falls before its last step starts, so skipping ahead changes nothing the real scheduler would see.
        """
        if self.allow_blocks:
            limit = min(s.decode_block_limit() for s in self.schedulers)
            if limit >= 2:
                contexts = [s.decode_block_contexts() for s in self.schedulers]
                times, gpu_s, categories = self.cost_model.decode_block_profile(contexts, limit)
                horizon = self.env.peek()
                ends = start_s + np.cumsum(times)
                steps = min(limit, 1 + int(np.searchsorted(ends[:-1], horizon, side="left")))
                if steps >= 2:
                    if steps < limit:
                        times = times[:steps]
                        gpu_s, categories = self._scale_block(gpu_s, categories, steps / limit)
                    self._block_profile = (gpu_s, categories)
                    return [s.schedule_decode_block(steps) for s in self.schedulers], times
        return [s.schedule() for s in self.schedulers], None

    @staticmethod
    def _scale_block(gpu_s: float, categories: dict[str, float], fraction: float):
        return gpu_s * fraction, {k: v * fraction for k, v in categories.items()}

    def _sleep(self):
        self._idle = True
        self._wake = self.env.event()
        yield self._wake
        self._idle = False

    def _loop(self):
        cm = self.cost_model
        pending: tuple[list[ScheduledBatch], np.ndarray | None] | None = None
        while True:
            if pending is None or not any(len(b) for b in pending[0]):
                if not any(s.has_schedulable() for s in self.schedulers):
                    yield from self._sleep()
                batches, block_times = self._schedule_all(self.env.now)
                if not any(len(b) for b in batches):  # nothing runnable (e.g. KV still being pulled): no step
                    yield from self._sleep()
                    continue
            else:
                batches, block_times = pending
            pending = None
            if block_times is None:
                stats = [cm.stats(b.new_tokens, b.context) for b in batches]
                dt, gpu_s, categories = cm.step_profile(stats)
                step_ends = None
            else:
                gpu_s, categories = self._block_profile
                step_ends = self.env.now + np.cumsum(block_times)
                dt = float(step_ends[-1] - self.env.now)
            if self.async_scheduling:
                pending = self._schedule_all(self.env.now + dt)  # scheduled while this step runs on the GPU
            self._record(gpu_s, categories, batches, dt, 1 if block_times is None else len(block_times))
            yield self.env.timeout(dt)
            now = self.env.now
            for sched, batch in zip(self.schedulers, batches, strict=True):
                rids, tokens, finished = sched.complete(batch)
                if self.log is not None and rids.size:
                    self.log.append((now if step_ends is None else step_ends, rids, tokens))
                for req in finished:
                    req.finish_time = now
                    self.on_finish(req, now)

    def _record(self, gpu_s: float, categories: dict[str, float], batches: list[ScheduledBatch], dt: float,
                steps: int) -> None:
        st = self.stats
        st.steps += steps
        st.busy_s += dt
        st.tokens += sum(b.num_tokens for b in batches) * steps
        running = sum(s.num_running for s in self.schedulers) / len(self.schedulers)
        st.running_reqs_x_s += running * dt
        usage = max(s.kv_usage for s in self.schedulers)
        st.kv_usage_x_s += usage * dt
        st.peak_kv_usage = max(st.peak_kv_usage, usage)
        if self.record_categories:
            scale = dt / (gpu_s or 1.0)
            acc = st.category_s
            for cat, seconds in categories.items():
                acc[cat] = acc.get(cat, 0.0) + seconds * scale
