"""One vLLM instance as a SimPy process: DP schedulers stepping in lockstep, each step timed by the cost model.

An ``Engine`` has ``dp`` schedulers (one per data-parallel rank); each step's duration comes from the cost
model for all ranks' batches. With async scheduling the next step is scheduled when the current one starts
(vLLM's one-step lookahead), so a request that arrives during a step joins two steps later and a finished
request's slot frees one step late. The cost model and the scheduler are plain objects; they know no SimPy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import simpy

from perfsim.costs.interface import StepCostProvider
from perfsim.serving.batch import ScheduledBatch
from perfsim.serving.jitter import JitterStream
from perfsim.serving.request import Request
from perfsim.serving.router import least_loaded_rank
from perfsim.serving.scheduler import Scheduler
from perfsim.serving.spec_decode import Acceptance, SpecStats

#: (step end time or a block's step end times, request ids, tokens per chunk) of a step whose chunks reach the
#: client; a block means every request got one chunk at every step end
ChunkLog = list[tuple[float | np.ndarray, np.ndarray, np.ndarray]]


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


@dataclass
class _Plan:
    """The next step (or block of identical decode steps) of every rank, with a block's precomputed cost."""

    batches: list[ScheduledBatch]
    block_times_s: np.ndarray | None = None  # seconds of each step of a decode block
    block_gpu_s: float = 0.0
    block_by_category_s: dict[str, float] = field(default_factory=dict)
    #: a watched block: nothing is scheduled yet; how many of its steps run is decided while it runs
    watched: bool = False

    def empty(self) -> bool:
        return not self.watched and not any(len(b) for b in self.batches)


class Engine:
    """One serving instance: DP schedulers in lockstep, stepped by the cost model inside SimPy."""

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        cost_model: StepCostProvider,
        *,
        num_blocks: int,
        on_finish: Callable[[Request, float], None] | None = None,
        log: ChunkLog | None = None,
        acceptance_rates: Sequence[float] = (),
        seed: Sequence[int] = (0,),
        allow_blocks: bool = False,
        watched_blocks: bool = False,
        hold_finished: bool = False,
        step_jitter: JitterStream | None = None,
    ):
        """``seed``: entropy of this instance's random draws (MTP acceptance), one stream per DP rank;
        ``on_finish(request, time)`` is called when a request's last token is out; ``log`` collects the chunks
        streamed to the client; ``allow_blocks``: cost runs of identical decode steps together, bounded by the
        next event of the simulation (when this engine is alone in it); ``watched_blocks``: the same when other
        engines share the simulation, each block cut by the first arrival or notification that reaches this
        engine (``_run_watched_block``); ``hold_finished``: finished requests keep their KV blocks until
        released (P/D prefill); ``step_jitter``: the factors that scale each step's time."""
        dep = cost_model.dep
        self.env, self.name, self.cost_model = env, name, cost_model
        self.async_scheduling = dep.async_scheduling
        self.stats = EngineStats()
        self.on_finish = on_finish
        self.log = log
        self.allow_blocks = allow_blocks
        self.watched_blocks = watched_blocks and not allow_blocks
        self._watch: simpy.Event | None = None  # armed while a watched block is planned or running
        self._disturbed_s: float | None = None  # when the first arrival / notification reached it
        self.jitter = step_jitter or JitterStream(0.0, (0,))
        self.schedulers: list[Scheduler] = []
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
        """Route a request to the least loaded DP rank (vLLM's DP load balancer) and wake the loop."""
        rank = least_loaded_rank(self.schedulers)
        req.dp_rank = rank
        self.schedulers[rank].add_request(req)
        self.notify()

    def notify(self) -> None:
        """Wake the step loop if it is idle (new work, KV arrived, or blocks freed); cut a watched block."""
        if self._idle and not self._wake.triggered:
            self._wake.succeed()
        if self._watch is not None and self._disturbed_s is None:
            self._disturbed_s = self.env.now
            self._watch.succeed()

    @property
    def num_preemptions(self) -> int:
        """Preemptions over all ranks."""
        return sum(s.num_preemptions for s in self.schedulers)

    # ---- the step loop ---------------------------------------------------------------------------
    def _schedule_all(self, start_s: float) -> _Plan:
        """Schedule the next step on every rank, or a block of identical decode steps when that is exact.

        With ``allow_blocks`` (this engine alone in the simulation) a block ends before the simulation's next
        event (an arrival), so skipping ahead changes nothing the real scheduler would see; with
        ``watched_blocks`` (other engines share the simulation) the block is only planned here, and how many of its
        steps run is decided while it runs (``_run_watched_block``).
        """
        if self.watched_blocks:
            limit = min(s.decode_block_limit() for s in self.schedulers)
            if limit >= 2:
                contexts = [s.decode_block_contexts() for s in self.schedulers]
                block = self.cost_model.decode_block_profile(contexts, limit)
                self._watch, self._disturbed_s = self.env.event(), None
                return _Plan(
                    batches=[],
                    block_times_s=block.step_times_s * self.jitter.peek(limit),
                    block_gpu_s=block.gpu_s,
                    block_by_category_s=block.by_category_s,
                    watched=True,
                )
        if self.allow_blocks:
            limit = min(s.decode_block_limit() for s in self.schedulers)
            if limit >= 2:
                contexts = [s.decode_block_contexts() for s in self.schedulers]
                block = self.cost_model.decode_block_profile(contexts, limit)
                times = block.step_times_s * self.jitter.peek(limit)
                horizon = self.env.peek()
                ends = start_s + np.cumsum(times)
                steps = min(limit, 1 + int(np.searchsorted(ends[:-1], horizon, side="left")))
                if steps >= 2:
                    fraction = steps / limit
                    self.jitter.take(steps)
                    return _Plan(
                        batches=[s.schedule_decode_block(steps) for s in self.schedulers],
                        block_times_s=times[:steps] if steps < limit else times,
                        block_gpu_s=block.gpu_s * fraction if steps < limit else block.gpu_s,
                        block_by_category_s=(
                            {k: v * fraction for k, v in block.by_category_s.items()}
                            if steps < limit
                            else block.by_category_s
                        ),
                    )
        return _Plan(batches=[s.schedule() for s in self.schedulers])

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
            if plan.watched:
                pending = yield from self._run_watched_block(plan)
                continue
            if plan.block_times_s is None:
                profile = cm.step_profile([cm.stats(b.new_tokens, b.context) for b in plan.batches])
                dt, gpu_s, by_category = (
                    profile.total_s * self.jitter.one(),
                    profile.gpu_s,
                    profile.by_category_s,
                )
                step_ends = None
                steps = 1
            else:
                gpu_s, by_category = plan.block_gpu_s, plan.block_by_category_s
                step_ends = self.env.now + np.cumsum(plan.block_times_s)
                dt = float(step_ends[-1] - self.env.now)
                steps = len(plan.block_times_s)
            self._record(gpu_s, by_category, dt, steps)
            if self.async_scheduling:
                pending = self._schedule_all(self.env.now + dt)  # scheduled while this step runs on the GPU
            yield self.env.timeout(dt)
            now = self.env.now
            for sched, batch in zip(self.schedulers, plan.batches, strict=True):
                out = sched.update_from_output(batch)
                if self.log is not None and out.request_ids.size:
                    self.log.append(
                        (now if step_ends is None else step_ends, out.request_ids, out.num_tokens)
                    )
                for req in out.finished:
                    req.finish_time_s = now
                    if self.on_finish is not None:
                        self.on_finish(req, now)

    def _run_watched_block(self, plan: _Plan):
        """Run a watched decode block: its steps go on until one of them would be planned after an arrival or a
        notification reached this engine, exactly as step by step.

        Step ``i`` of the block is planned at the start of step ``i - 1`` with async scheduling (vLLM's one-step
        lookahead), at the end of step ``i - 1`` without; step 0 was planned before the block, so a disturbance
        before the block starts leaves it one step. The block keeps
        the steps planned before the first disturbance, schedules them at once when the next plan is due (arrivals
        so far are then visible to it, as they would be), and returns that next plan (async) or None.
        """
        assert plan.block_times_s is not None
        start = self.env.now
        times = plan.block_times_s
        limit = times.size
        ends = start + np.cumsum(times)
        lag = 1 if self.async_scheduling else 0
        # planned[i - 1]: when step i (1..limit) is planned (step 1 at the block's start with async scheduling)
        planned = np.concatenate(([start], ends))[1 - lag : limit + 1 - lag]
        k = limit
        due = float(planned[-1])
        if self._disturbed_s is None and due > self.env.now:
            assert self._watch is not None
            yield self._watch | self.env.timeout(due - self.env.now)
        if self._disturbed_s is not None and self._disturbed_s <= due:
            k = 1 + int(np.searchsorted(planned, self._disturbed_s, side="left"))  # first planned after it
            due = float(planned[k - 1])
            if due > self.env.now:
                yield self.env.timeout(due - self.env.now)
        self._watch, self._disturbed_s = None, None
        self.jitter.take(k)
        batches = [s.schedule_decode_block(k) for s in self.schedulers]
        fraction = k / limit
        step_ends = ends[:k]
        self._record(
            plan.block_gpu_s * fraction,
            {c: v * fraction for c, v in plan.block_by_category_s.items()},
            float(step_ends[-1] - start),
            k,
        )
        pending = self._schedule_all(float(step_ends[-1])) if self.async_scheduling else None
        if step_ends[-1] > self.env.now:
            yield self.env.timeout(float(step_ends[-1]) - self.env.now)
        now = self.env.now
        for sched, batch in zip(self.schedulers, batches, strict=True):
            out = sched.update_from_output(batch)
            if self.log is not None and out.request_ids.size:
                self.log.append((step_ends, out.request_ids, out.num_tokens))
            for req in out.finished:
                req.finish_time_s = now
                if self.on_finish is not None:
                    self.on_finish(req, now)
        return pending

    def _record(self, gpu_s: float, by_category: dict[str, float], dt: float, steps: int) -> None:
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
        for cat, seconds in by_category.items():
            acc[cat] = acc.get(cat, 0.0) + seconds * scale
