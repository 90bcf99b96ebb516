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

from perfsim.costs.interface import StepCostProvider
from perfsim.serving.request import Request
from perfsim.serving.scheduler import ScheduledBatch, Scheduler, SpecStats

#: vLLM's DP load balancer scores a rank by waiting x 4 + running (v1/engine/core_client.py,
#: DPLBAsyncMPClient.get_core_engine_for_request); vLLM's counts may lag by up to 100 ms, perfsim's are exact
DP_LB_WAITING_WEIGHT = 4


@dataclass
class EngineStats:
    """Per-engine counters over a run (times in seconds), each step counted for the batch it ran.

    Running requests are averaged over DP ranks; KV usage is the fullest rank's.
    """

    steps: int = 0
    busy_s: float = 0.0
    running_reqs_x_s: float = 0.0  # integral of running requests over busy time
    kv_usage_x_s: float = 0.0
    peak_kv_usage: float = 0.0
    category_s: dict[str, float] = field(default_factory=dict)
    spec: SpecStats = field(default_factory=SpecStats)


class Acceptance:
    """Draws how many MTP draft tokens a verification step accepts (consecutive from the first)."""

    def __init__(self, rates: Sequence[float], rng: np.random.Generator):
        self.rates = np.asarray(rates)
        self.rng = rng

    def __call__(self, m: int) -> np.ndarray:
        """Accepted drafts for each of ``m`` verified decodes (consecutive accepts from position 1)."""
        hits = self.rng.random((m, self.rates.size)) < self.rates
        return np.cumprod(hits, axis=1).sum(axis=1).astype(np.int64)


@dataclass
class _Plan:
    """The next step (or block of identical decode steps) of every rank, with a block's precomputed cost."""

    batches: list[ScheduledBatch]
    block_times: np.ndarray | None = None  # seconds of each step of a decode block
    block_gpu_s: float = 0.0
    block_categories: dict[str, float] = field(default_factory=dict)

    def empty(self) -> bool:
        return not any(len(b) for b in self.batches)


class Engine:
    """One serving instance: DP schedulers in lockstep, stepped by the cost model inside SimPy."""

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        cost_model: StepCostProvider,
        *,
        num_blocks: int,
        on_finish: Callable[[Request, float], None],
        log: list | None = None,
        acceptance_rates: Sequence[float] = (),
        seed: Sequence[int] = (0,),
        allow_blocks: bool = False,
        hold_finished: bool = False,
    ):
        """``seed``: entropy of this instance's random draws (MTP acceptance), one stream per DP rank;
        ``hold_finished``: finished requests keep their KV blocks until released (P/D prefill)."""
        dep = cost_model.dep
        self.env, self.name, self.cost_model = env, name, cost_model
        self.async_scheduling = dep.async_scheduling
        self.stats = EngineStats()
        self.on_finish = on_finish
        # (time or block of step-end times, request ids, tokens per chunk) of every step or decode block whose
        # chunks reach the client; a block means every request got one chunk at every step end
        self.log = log
        self.allow_blocks = allow_blocks
        self.schedulers = []
        for rank in range(dep.dp):
            accept = (
                Acceptance(acceptance_rates, np.random.default_rng([*seed, rank]))
                if dep.num_speculative_tokens
                else None
            )
            self.schedulers.append(
                Scheduler(
                    max_num_seqs=dep.max_num_seqs,
                    max_num_batched_tokens=dep.max_num_batched_tokens,
                    num_blocks=num_blocks,
                    block_size=dep.block_size,
                    max_model_len=dep.max_model_len,
                    num_spec_tokens=dep.num_speculative_tokens,
                    accept=accept,
                    spec_stats=self.stats.spec,
                    hold_finished=hold_finished,
                )
            )
        self._wake = env.event()
        self._idle = True
        self.process = env.process(self._loop())

    # ---- requests in ---------------------------------------------------------------------------
    def submit(self, req: Request) -> None:
        """Route a request to the DP rank with the lowest 4 x waiting + running (vLLM's DP load balancer)."""
        rank = min(
            range(len(self.schedulers)),
            key=lambda r: (
                DP_LB_WAITING_WEIGHT * len(self.schedulers[r].waiting) + self.schedulers[r].num_running
            ),
        )
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
    def _schedule_all(self, start_s: float) -> _Plan:
        """Schedule the next step on every rank, or a block of identical decode steps when that is exact.

        A block is used only when this engine is alone in the simulation and no other event (an arrival)
        falls before its last step starts, so skipping ahead changes nothing the real scheduler would see.
        """
        if self.allow_blocks:
            limit = min(s.decode_block_limit() for s in self.schedulers)
            if limit >= 2:
                contexts = [s.decode_block_contexts() for s in self.schedulers]
                block = self.cost_model.decode_block_profile(contexts, limit)
                times, gpu_s, categories = block.step_times_s, block.gpu_s, block.by_category_s
                horizon = self.env.peek()
                ends = start_s + np.cumsum(times)
                steps = min(limit, 1 + int(np.searchsorted(ends[:-1], horizon, side="left")))
                if steps >= 2:
                    if steps < limit:
                        times = times[:steps]
                        gpu_s, categories = self._scale_block(gpu_s, categories, steps / limit)
                    return _Plan(
                        [s.schedule_decode_block(steps) for s in self.schedulers], times, gpu_s, categories
                    )
        return _Plan([s.schedule() for s in self.schedulers])

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
        pending: _Plan | None = None
        while True:
            plan = (
                pending if pending is not None and not pending.empty() else self._schedule_all(self.env.now)
            )
            pending = None
            if plan.empty():  # nothing runnable (idle, or KV still being pulled): no step until woken
                yield from self._sleep()
                continue
            if plan.block_times is None:
                profile = cm.step_profile([cm.stats(b.new_tokens, b.context) for b in plan.batches])
                dt, gpu_s, categories = profile.total_s, profile.gpu_s, profile.by_category_s
                step_ends = None
            else:
                gpu_s, categories = plan.block_gpu_s, plan.block_categories
                step_ends = self.env.now + np.cumsum(plan.block_times)
                dt = float(step_ends[-1] - self.env.now)
            self._record(gpu_s, categories, dt, 1 if plan.block_times is None else len(plan.block_times))
            if self.async_scheduling:
                pending = self._schedule_all(self.env.now + dt)  # scheduled while this step runs on the GPU
            yield self.env.timeout(dt)
            now = self.env.now
            for sched, batch in zip(self.schedulers, plan.batches, strict=True):
                rids, tokens, finished = sched.complete(batch)
                if self.log is not None and rids.size:
                    self.log.append((now if step_ends is None else step_ends, rids, tokens))
                for req in finished:
                    req.finish_time = now
                    self.on_finish(req, now)

    def _record(self, gpu_s: float, categories: dict[str, float], dt: float, steps: int) -> None:
        st = self.stats
        st.steps += steps
        st.busy_s += dt
        running = sum(s.num_running for s in self.schedulers) / len(self.schedulers)
        st.running_reqs_x_s += running * dt
        usage = max(s.kv_usage for s in self.schedulers)
        st.kv_usage_x_s += usage * dt
        st.peak_kv_usage = max(st.peak_kv_usage, usage)
        scale = dt / (gpu_s or 1.0)
        acc = st.category_s
        for cat, seconds in categories.items():
            acc[cat] = acc.get(cat, 0.0) + seconds * scale
