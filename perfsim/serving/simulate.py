"""Run one benchmark scenario through the simulated serving system and collect what the client saw.

Builds the instances (aggregated engines, or prefill and decode instances with KV transfer between them,
as vLLM's NixlConnector proxy flow does), drives them with the ``vllm bench serve`` client (arrivals,
concurrency semaphore) and returns per-request records plus engine counters.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import simpy

from perfsim.costs.comm import link, transfer
from perfsim.costs.memory import MemoryPlan
from perfsim.costs.params import CostParams
from perfsim.costs.step import StepCostModel
from perfsim.serving.engine import Engine, EngineStats
from perfsim.serving.metrics import ClientView, RequestRecord
from perfsim.serving.request import Request
from perfsim.serving.workload import BenchConfig, Workload, make_workload
from perfsim.specs.deployment import DEFAULT_MTP_ACCEPTANCE, ResolvedDeployment
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model

#: roles in the random-stream keys of engines (with the bench seed and the instance index)
SEED_INSTANCE, SEED_PREFILL, SEED_DECODE = 0, 1, 2
#: KV pulls a decode instance runs at once. NIXL transfers share the decode node's link; one at a time at
#: full bandwidth moves the same bytes per second as concurrent ones sharing it, and finishes the first
#: request's pull sooner (FIFO rather than processor sharing)
KV_PULLS_AT_ONCE = 1


@dataclass
class SimulationResult:
    """What the client saw (``view``), engine counters and the simulated duration (s)."""

    view: ClientView
    duration_s: float
    num_sent: int
    engines: dict[str, EngineStats]
    preemptions: int
    kv_transfer_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    log: list = field(default_factory=list, repr=False)
    requests: list[Request] = field(default_factory=list, repr=False)

    @cached_property
    def records(self) -> list[RequestRecord]:
        """Per-request chunk times, in request order (built on first access)."""
        return per_request_records(self.log, self.requests)


def acceptance_rates(dep: ResolvedDeployment) -> list[float]:
    """Per-position conditional acceptance of MTP drafts (user rate for every position, or the default)."""
    k = dep.num_speculative_tokens
    if dep.mtp_acceptance_rate is not None:
        return [dep.mtp_acceptance_rate] * k
    return list(DEFAULT_MTP_ACCEPTANCE[:k])


class _Progress:
    """A one-line progress indicator on a terminal (stderr), silent otherwise."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done = total, 0
        self.enabled = enabled and sys.stderr.isatty()
        self.last = 0.0

    def tick(self) -> None:
        self.done += 1
        if self.enabled and (time.monotonic() - self.last > 0.2 or self.done == self.total):
            self.last = time.monotonic()
            sys.stderr.write(f"\r  simulating: {self.done}/{self.total} requests")
            if self.done == self.total:
                sys.stderr.write("\r" + " " * 40 + "\r")
            sys.stderr.flush()


def simulate(
    model: Model,
    hw: HardwareSpec,
    dep: ResolvedDeployment,
    plan: MemoryPlan,
    params: CostParams,
    bench: BenchConfig,
    *,
    special_tokens: int = 1,
    progress: bool = False,
    workload: Workload | None = None,
    cost_model: StepCostModel | None = None,
    fast: bool = True,
) -> SimulationResult:
    """Simulate ``vllm bench serve`` against the deployment; deterministic for a given seed.

    ``cost_model`` replaces the step-cost model (anything with ``stats``, ``step_profile``,
    ``decode_block_profile`` and ``dep``), e.g. a ``ConstantStepCost`` for what-ifs and tests.
    ``fast=False`` simulates every engine step one by one (no decode blocks), for checking.
    """
    started = time.perf_counter()
    env = simpy.Environment()
    wl = workload or make_workload(bench, special_tokens=special_tokens)
    n = len(wl)
    if int(wl.server_prompt_lens.max()) + int(wl.output_lens.max()) > dep.max_model_len:
        from perfsim.errors import SpecError

        raise SpecError(
            f"prompt + output ({int(wl.server_prompt_lens.max())} + {int(wl.output_lens.max())} tokens) "
            f"exceeds max_model_len {dep.max_model_len}",
            field="max_model_len",
        )
    cost_model = cost_model or StepCostModel(model, hw, dep, params)
    rates = acceptance_rates(dep)
    reqs = [
        Request(i, int(wl.client_prompt_lens[i]), int(wl.server_prompt_lens[i]), int(wl.output_lens[i]))
        for i in range(n)
    ]
    done = [0]
    all_done = env.event()
    slots = [bench.max_concurrency or n]
    slot_freed = [env.event()]
    prog = _Progress(n, progress)

    def client_finish(req: Request, now: float) -> None:
        done[0] += 1
        slots[0] += 1
        prog.tick()
        if not slot_freed[0].triggered:
            slot_freed[0].succeed()
        if done[0] == n:
            all_done.succeed()

    client_log: list = []  # (time, request ids, tokens) of chunks streamed to the client

    engines: dict[str, Engine] = {}
    kv_times: list[float] = []
    api_delay = params.api_server_latency_s

    def _deliver(engine: Engine, req: Request) -> None:
        """The request reaches the engine after the API server's handling (HTTP, tokenization, IPC)."""
        if api_delay > 0:
            env.timeout(api_delay).callbacks.append(lambda _event: engine.submit(req))
        else:
            engine.submit(req)

    preemption_sources: list[Engine] = []

    if dep.disaggregated:
        decode_engines: list[Engine] = []
        rr = {"p": 0, "d": 0}
        kv_link = link(hw, "nvlink" if dep.kv_transfer_link == "nvlink" else "nic", params)
        links: dict[str, simpy.Resource] = {}
        prefill_of: dict[int, Engine] = {}
        prefill_rank: dict[int, int] = {}

        def prefill_done(shadow: Request, now: float) -> None:
            """P finished the prompt: its scheduler keeps the blocks until D has pulled them (delayed free)."""
            prefill_rank[shadow.id] = shadow.engine
            req = reqs[shadow.id]
            req.needs_remote_kv = True
            req.num_computed = (
                req.prompt_len - 1
            )  # D recomputes the last prompt token to emit the first token
            target = decode_engines[rr["d"] % len(decode_engines)]
            rr["d"] += 1
            # the proxy gets P's response and sends the request to D
            env.timeout(params.pd_handoff_s).callbacks.append(lambda _e, t=target, r=req: t.submit(r))

        def start_pull(d_engine: Engine, req: Request) -> None:
            env.process(_pull(d_engine, req))

        def _pull(d_engine: Engine, req: Request):
            start = env.now
            with links[d_engine.name].request() as slot:
                yield slot
                yield env.timeout(transfer(req.prompt_len * plan.kv_bytes_per_token, kv_link))
            kv_times.append(env.now - start)
            p_engine = prefill_of[req.id]
            p_engine.schedulers[prefill_rank.pop(req.id)].release(req.id)
            p_engine.notify()
            d_engine.schedulers[req.engine].remote_kv_ready(req)
            d_engine.notify()

        prefill_engines = []
        for i in range(dep.num_prefill_instances):
            e = Engine(
                env,
                f"prefill{i}",
                cost_model,
                num_blocks=plan.num_gpu_blocks,
                on_finish=prefill_done,
                acceptance_rates=rates,
                seed=(bench.seed, SEED_PREFILL, i),
                hold_finished=True,
            )
            prefill_engines.append(e)
            engines[e.name] = e
        for i in range(dep.num_decode_instances):
            e = Engine(
                env,
                f"decode{i}",
                cost_model,
                num_blocks=plan.num_gpu_blocks,
                log=client_log,
                on_finish=client_finish,
                acceptance_rates=rates,
                seed=(bench.seed, SEED_DECODE, i),
            )
            decode_engines.append(e)
            engines[e.name] = e
            links[e.name] = simpy.Resource(env, capacity=KV_PULLS_AT_ONCE)
            for sched in e.schedulers:
                sched.on_remote_alloc = lambda req, eng=e: start_pull(eng, req)

        def send(req: Request) -> None:
            shadow = Request(req.id, req.client_prompt_len, req.prompt_len, 1)  # the proxy asks P for 1 token
            target = prefill_engines[rr["p"] % len(prefill_engines)]
            rr["p"] += 1
            prefill_of[req.id] = target
            _deliver(target, shadow)

        preemption_sources = prefill_engines + decode_engines
    else:
        instances = []
        for i in range(dep.num_instances):
            e = Engine(
                env,
                f"engine{i}",
                cost_model,
                num_blocks=plan.num_gpu_blocks,
                log=client_log,
                on_finish=client_finish,
                acceptance_rates=rates,
                seed=(bench.seed, SEED_INSTANCE, i),
                allow_blocks=fast and dep.num_instances == 1,
            )
            instances.append(e)
            engines[e.name] = e
        counter = [0]

        def send(req: Request) -> None:
            target = instances[counter[0] % len(instances)]
            counter[0] += 1
            _deliver(target, req)

        preemption_sources = instances

    def client():
        for i, req in enumerate(reqs):
            wait = float(wl.arrival_s[i]) - env.now
            if wait > 0:
                yield env.timeout(wait)
            while slots[0] == 0:
                slot_freed[0] = env.event()
                yield slot_freed[0]
            slots[0] -= 1
            req.send_time = env.now
            send(req)

    env.process(client())
    try:
        env.run(until=all_done)
    except RuntimeError as exc:  # SimPy: no events left before every request finished
        from perfsim.errors import PerfsimError

        raise PerfsimError(
            f"the simulation stalled with {n - done[0]} of {n} requests unfinished ({exc}); "
            "please report the scenario"
        ) from None
    view = client_view(client_log, reqs)
    duration = max(r.finish_time for r in reqs)
    return SimulationResult(
        view,
        duration,
        n,
        {k: e.stats for k, e in engines.items()},
        sum(e.num_preemptions for e in preemption_sources),
        kv_times,
        time.perf_counter() - started,
        client_log,
        reqs,
    )


def client_view(log: list, reqs: list[Request]) -> ClientView:
    """What the client saw, from the engines' chunk log (entries in time order).

    An entry is (step end time, ids, tokens per chunk) or (step end times of a decode block, ids, tokens):
    in a block every id gets a chunk at every step end, so its gaps inside the block are the block's step
    durations, counted once per id.
    """
    n = len(reqs)
    send = np.array([r.send_time for r in reqs])
    first = np.full(n, np.nan)
    last = np.full(n, np.nan)
    tokens = np.zeros(n, dtype=np.int64)
    itl_values: list[np.ndarray] = []
    itl_counts: list[np.ndarray] = []
    start = float(send.min()) if n else 0.0
    bucket_times: list[np.ndarray] = []
    bucket_counts: list[np.ndarray] = []
    for t, rids, toks in log:
        block = isinstance(t, np.ndarray)
        t0, t1 = (float(t[0]), float(t[-1])) if block else (t, t)
        prev = last[rids]
        seen = ~np.isnan(prev)
        if seen.any():
            itl_values.append(t0 - prev[seen])
            itl_counts.append(np.ones(int(seen.sum()), dtype=np.int64))
        unseen = rids[~seen]
        first[unseen] = t0
        if block:
            itl_values.append(np.diff(t))
            itl_counts.append(np.full(t.size - 1, rids.size, dtype=np.int64))
            tokens[rids] += toks * t.size
            bucket_times.append(t)
            bucket_counts.append(np.full(t.size, rids.size, dtype=np.int64))
        else:
            tokens[rids] += toks
            bucket_times.append(np.array([t]))
            bucket_counts.append(np.array([rids.size], dtype=np.int64))
        last[rids] = t1
    if bucket_times:
        times = np.concatenate(bucket_times) - start
        buckets = np.bincount(times.astype(np.int64), weights=np.concatenate(bucket_counts)).astype(np.int64)
    else:
        buckets = np.zeros(1, dtype=np.int64)
    values = np.concatenate(itl_values) if itl_values else np.zeros(0)
    counts = np.concatenate(itl_counts) if itl_counts else np.zeros(0, dtype=np.int64)
    return ClientView(
        send, np.array([r.client_prompt_len for r in reqs]), tokens, first, last, values, counts, buckets
    )


def per_request_records(log: list, reqs: list[Request]) -> list[RequestRecord]:
    """Per-request chunk times (for inspection and tests; the metrics use ``client_view``)."""
    chunks: list[list[np.ndarray]] = [[] for _ in reqs]
    tokens = np.zeros(len(reqs), dtype=np.int64)
    for t, rids, toks in log:
        times = t if isinstance(t, np.ndarray) else np.array([t])
        for rid, k in zip(rids.tolist(), toks.tolist(), strict=True):
            chunks[rid].append(times)
            tokens[rid] += k * times.size
    return [
        RequestRecord(
            r.send_time,
            r.client_prompt_len,
            int(tokens[i]),
            np.concatenate(chunks[i]) if chunks[i] else np.zeros(0),
        )
        for i, r in enumerate(reqs)
    ]
