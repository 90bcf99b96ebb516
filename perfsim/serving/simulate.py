"""Run one benchmark scenario through the simulated serving system and collect what the client saw.

Composes the SimPy parts: the ``vllm bench serve`` client (``client``), the API server's front-end delay
(``api_server``), the engines (``engine``) either as aggregated instances behind a round-robin router or as
prefill and decode instances behind vLLM's P/D proxy (``pd_proxy``), and reads the client's view from the
engines' chunk log (``client_view``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import simpy

from perfsim.costs.comm import link
from perfsim.costs.interface import StepCostProvider
from perfsim.costs.memory import MemoryPlan, memory_plan
from perfsim.costs.params import CostParams
from perfsim.costs.step import StepCostModel
from perfsim.errors import PerfsimError, SpecError
from perfsim.serving.api_server import ApiServer
from perfsim.serving.client import BenchClient
from perfsim.serving.client_view import client_view, per_request_records
from perfsim.serving.engine import ChunkLog, Engine, EngineStats
from perfsim.serving.jitter import JitterStream
from perfsim.serving.metrics import ClientView, RequestRecord
from perfsim.serving.pd_proxy import PDProxy
from perfsim.serving.request import Request
from perfsim.serving.router import RoundRobin
from perfsim.serving.workload import BenchConfig, Workload, make_workload
from perfsim.specs.deployment import ResolvedDeployment
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model
from perfsim.specs.serve_defaults import DEFAULT_MTP_ACCEPTANCE

#: roles in the random-stream keys of engines (with the bench seed and the instance index), of their step-time
#: jitter and of the API server's latency jitter
SEED_INSTANCE, SEED_PREFILL, SEED_DECODE = 0, 1, 2
SEED_STEP_JITTER, SEED_API_JITTER = 10, 11


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
    log: ChunkLog = field(default_factory=list, repr=False)
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
    cost_model: StepCostProvider | None = None,
    fast: bool = True,
) -> SimulationResult:
    """Simulate ``vllm bench serve`` against the deployment; deterministic for a given seed.

    ``cost_model`` replaces the step-cost model (any ``StepCostProvider``), e.g. a ``ConstantStepCost`` for
    what-ifs and tests. ``fast=False`` simulates every engine step one by one (no decode blocks), for checking.
    """
    started = time.perf_counter()
    env = simpy.Environment()
    wl = workload or make_workload(bench, special_tokens=special_tokens)
    n = len(wl)
    longest = int(wl.server_prompt_lens.max()) + int(wl.output_lens.max())
    if longest > dep.max_model_len:
        raise SpecError(
            f"prompt + output ({int(wl.server_prompt_lens.max())} + {int(wl.output_lens.max())} tokens) "
            f"exceeds max_model_len {dep.max_model_len}",
            field="max_model_len",
        )
    costs: StepCostProvider = cost_model or StepCostModel(model, hw, dep, params)
    rates = acceptance_rates(dep)
    reqs = [
        Request(i, int(wl.client_prompt_lens[i]), int(wl.server_prompt_lens[i]), int(wl.output_lens[i]))
        for i in range(n)
    ]
    client = BenchClient(env, reqs, wl.arrival_s, bench.max_concurrency, progress=progress)
    api = ApiServer(
        env,
        params.api_server_latency_s,
        JitterStream(params.api_server_latency_cv, (bench.seed, SEED_API_JITTER)),
    )

    def step_jitter(role: int, index: int) -> JitterStream:
        return JitterStream(params.step_time_cv, (bench.seed, SEED_STEP_JITTER, role, index))

    log: ChunkLog = []
    engines: dict[str, Engine] = {}
    proxy: PDProxy | None = None
    if dep.disaggregated:
        prefill = [
            Engine(
                env,
                f"prefill{i}",
                costs,
                num_blocks=plan.num_gpu_blocks,
                acceptance_rates=rates,
                seed=(bench.seed, SEED_PREFILL, i),
                hold_finished=True,
                step_jitter=step_jitter(SEED_PREFILL, i),
            )
            for i in range(dep.num_prefill_instances)
        ]
        decode_costs, decode_blocks = costs, plan.num_gpu_blocks
        if dep.decode is not None:  # decode instances of another shape: their own step costs and KV cache
            decode_costs = StepCostModel(model, hw, dep.decode, params)
            decode_blocks = memory_plan(model, hw, dep.decode).num_gpu_blocks
        decode = [
            Engine(
                env,
                f"decode{i}",
                decode_costs,
                num_blocks=decode_blocks,
                log=log,
                on_finish=client.finish,
                acceptance_rates=rates,
                seed=(bench.seed, SEED_DECODE, i),
                watched_blocks=fast,
                step_jitter=step_jitter(SEED_DECODE, i),
            )
            for i in range(dep.num_decode_instances)
        ]
        engines.update({e.name: e for e in prefill + decode})
        kv_link = link(hw, "nvlink" if dep.kv_transfer_link == "nvlink" else "nic", params)
        proxy = PDProxy(
            env,
            reqs,
            prefill,
            decode,
            api=api,
            kv_bytes_per_token=plan.kv_bytes_per_token,
            kv_link=kv_link,
            handoff_s=params.pd_handoff_s,
        )
        client.start(proxy.send)
    else:
        instances = [
            Engine(
                env,
                f"engine{i}",
                costs,
                num_blocks=plan.num_gpu_blocks,
                log=log,
                on_finish=client.finish,
                acceptance_rates=rates,
                seed=(bench.seed, SEED_INSTANCE, i),
                allow_blocks=fast and dep.num_instances == 1,
                watched_blocks=fast,
                step_jitter=step_jitter(SEED_INSTANCE, i),
            )
            for i in range(dep.num_instances)
        ]
        engines.update({e.name: e for e in instances})
        router = RoundRobin(len(instances))
        client.start(lambda req: api.deliver(instances[router.pick()], req))
    try:
        env.run(until=client.all_finished)
    except RuntimeError as exc:  # SimPy: no events left before every request finished
        raise PerfsimError(
            f"the simulation stalled with {n - client.num_finished} of {n} requests unfinished ({exc}); "
            "please report the scenario"
        ) from None
    return SimulationResult(
        view=client_view(log, reqs),
        duration_s=max(r.finish_time_s for r in reqs),
        num_sent=n,
        engines={k: e.stats for k, e in engines.items()},
        preemptions=sum(e.num_preemptions for e in engines.values()),
        kv_transfer_s=proxy.kv_transfer_s if proxy is not None else [],
        wall_s=time.perf_counter() - started,
        log=log,
        requests=reqs,
    )
