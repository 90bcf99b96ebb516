"""One benchmark scenario, end to end below calibration: simulate it and report it as ``vllm bench serve`` would.

``run_scenario`` takes resolved specs and cost parameters, simulates the benchmark and returns the result
dict with every key of ``vllm bench serve --save-result`` (0.14.1) with the same meaning, plus perfsim's own
keys: ``num_gpus`` and per-GPU throughputs, the resolved config, the step-time breakdown and scheduler
counters. Calibration evaluates measurements with it; ``perfsim.prediction`` adds provenance and error bands.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

from perfsim import __version__
from perfsim.costs.memory import MemoryPlan, plan_deployment
from perfsim.costs.params import CostParams
from perfsim.serving.metrics import bench_metrics
from perfsim.serving.simulate import SimulationResult, acceptance_rates, simulate
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import VLLM_VERSION, Deployment, ResolvedDeployment
from perfsim.specs.hardware import HardwareSpec, load_hardware
from perfsim.specs.loading import build_settings
from perfsim.specs.model import Model, load_model
from perfsim.specs.model.quantization_flag import METHOD_OF_PRECISION


@dataclass(frozen=True)
class ScenarioRun:
    """A simulated benchmark run: the bench-serve result dict and the simulation behind it."""

    result: dict[str, Any]
    simulation: SimulationResult


def run_scenario(
    model: Model,
    hw: HardwareSpec,
    dep: ResolvedDeployment,
    plan: MemoryPlan,
    params: CostParams,
    bench: BenchConfig,
    *,
    label: str = "",
    progress: bool = False,
) -> ScenarioRun:
    """Simulate ``bench`` against the deployment and build its bench-serve result."""
    sim = simulate(model, hw, dep, plan, params, bench, progress=progress)
    metrics = bench_metrics(
        sim.view,
        sim.duration_s,
        num_sent=sim.num_sent,
        percentiles=bench.percentiles(),
        selected=bench.selected_metrics(),
        goodput_ms=bench.goodput_slos_ms(),
    )
    return ScenarioRun(result=result_json(model, hw, dep, plan, bench, sim, metrics, label), simulation=sim)


def run_named_scenario(
    model: Model | str,
    hw: str,
    deployment: dict[str, Any],
    bench: dict[str, Any],
    params: CostParams,
    precision: str = "auto",
) -> dict[str, Any]:
    """The result of a scenario given by names and flag dicts (as measurement rows state them)."""
    m = model if isinstance(model, Model) else load_model(model, precision)
    gpu = load_hardware(hw)
    resolved, plan = plan_deployment(m, gpu, build_settings(Deployment, deployment, "deployment"))
    cfg = build_settings(BenchConfig, bench, "bench")
    return run_scenario(m, gpu, resolved, plan, params, cfg).result


def bench_date() -> str:
    """The result's date as bench serve writes it (%Y%m%d-%H%M%S): now, or SOURCE_DATE_EPOCH when set (for
    byte-identical reruns)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = float(epoch) if epoch and epoch.isdigit() else time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(stamp) if not epoch else time.gmtime(stamp))


def result_json(
    m: Model,
    hw: HardwareSpec,
    dep: ResolvedDeployment,
    plan: MemoryPlan,
    cfg: BenchConfig,
    sim: SimulationResult,
    metrics: dict,
    label: str,
) -> dict[str, Any]:
    """The bench-serve result keys (in bench serve's order), spec-decode counters, per-GPU figures, perfsim's
    engine counters and the resolved configuration."""
    out: dict[str, Any] = {
        "date": bench_date(),
        "endpoint_type": "openai",
        "backend": "openai",
        "label": label or None,
        "model_id": m.recipe.checkpoint,
        "tokenizer_id": m.recipe.checkpoint,
        "num_prompts": cfg.num_prompts,
        "request_rate": "inf" if math.isinf(cfg.request_rate) else cfg.request_rate,
        "burstiness": cfg.burstiness,
        "max_concurrency": cfg.max_concurrency,
    }
    spec_keys = {}
    if dep.num_speculative_tokens:
        drafts = sum(e.spec.num_drafts for e in sim.engines.values())
        by_pos = [
            sum(e.spec.num_accepted_tokens_per_pos[i] for e in sim.engines.values())
            for i in range(dep.num_speculative_tokens)
        ]
        accepted = sum(by_pos)
        draft_tokens = sum(e.spec.num_draft_tokens for e in sim.engines.values())
        spec_keys = {
            "spec_decode_acceptance_rate": 100.0 * accepted / draft_tokens if draft_tokens else 0.0,
            "spec_decode_acceptance_length": 1 + accepted / drafts if drafts else 1.0,
            "spec_decode_num_drafts": drafts,
            "spec_decode_draft_tokens": draft_tokens,
            "spec_decode_accepted_tokens": accepted,
            "spec_decode_per_position_acceptance_rates": [a / drafts if drafts else 0.0 for a in by_pos],
        }
    head = {k: v for k, v in metrics.items() if not k.endswith("_ms")}
    stats = {k: v for k, v in metrics.items() if k.endswith("_ms")}
    out.update(head)
    out.update(spec_keys)
    out.update(stats)
    gpus = dep.num_gpus
    out["num_gpus"] = gpus
    out["output_throughput_per_gpu"] = metrics["output_throughput"] / gpus
    out["total_token_throughput_per_gpu"] = metrics["total_token_throughput"] / gpus
    out["request_throughput_per_gpu"] = metrics["request_throughput"] / gpus
    if dep.disaggregated:
        dur = metrics["duration"] or 1.0
        out["output_throughput_per_decode_gpu"] = (
            metrics["total_output_tokens"]
            / dur
            / (dep.decode_instance.gpus_per_instance * dep.num_decode_instances)
        )
        out["input_throughput_per_prefill_gpu"] = (
            metrics["total_input_tokens"] / dur / (dep.gpus_per_instance * dep.num_prefill_instances)
        )
    busy = sum(e.busy_s for e in sim.engines.values()) or 1.0
    categories: dict[str, float] = {}
    for e in sim.engines.values():
        for k, v in e.category_s.items():
            categories[k] = categories.get(k, 0.0) + v
    total_cat = sum(categories.values()) or 1.0
    out["step_time_breakdown"] = {
        k: v / total_cat for k, v in sorted(categories.items(), key=lambda kv: -kv[1])
    }
    out["engine_steps"] = sum(e.steps for e in sim.engines.values())
    out["num_preemptions"] = sim.preemptions
    out["mean_running_requests"] = sum(e.running_reqs_x_s for e in sim.engines.values()) / busy
    out["mean_kv_cache_usage"] = sum(e.kv_usage_x_s for e in sim.engines.values()) / busy
    out["peak_kv_cache_usage"] = max((e.peak_kv_usage for e in sim.engines.values()), default=0.0)
    if sim.kv_transfer_s:
        out["mean_kv_transfer_ms"] = 1000 * sum(sim.kv_transfer_s) / len(sim.kv_transfer_s)
    out["config"] = config_dict(m, hw, dep, plan, cfg)
    out["perfsim_version"] = __version__
    return out


def config_dict(
    m: Model, hw: HardwareSpec, dep: ResolvedDeployment, plan: MemoryPlan, cfg: BenchConfig
) -> dict:
    """The fully resolved configuration of a prediction (model, GPU, vLLM engine, benchmark, memory)."""
    return {
        "model": m.name,
        "checkpoint": m.recipe.checkpoint,
        "precision": m.precision,
        "quantization": METHOD_OF_PRECISION[m.precision],
        "module_precisions": dict(m.recipe.module_dtypes),
        "hw": hw.name,
        "vllm_version": VLLM_VERSION,
        "tensor_parallel_size": dep.tp,
        "data_parallel_size": dep.dp,
        "expert_parallel_size": dep.ep,
        "enable_expert_parallel": dep.ep > 1,
        "num_instances": dep.num_instances,
        "num_prefill_instances": dep.num_prefill_instances,
        "num_decode_instances": dep.num_decode_instances,
        "all2all_backend": dep.all2all_backend,
        "enable_eplb": dep.eplb,
        "physical_experts": dep.physical_experts,
        "enable_dbo": dep.enable_dbo,
        "decode_instance": (
            {
                "tensor_parallel_size": dep.decode.tp,
                "data_parallel_size": dep.decode.dp,
                "expert_parallel_size": dep.decode.ep,
                "all2all_backend": dep.decode.all2all_backend,
                "cudagraph_mode": dep.decode.cudagraph_mode,
            }
            if dep.decode is not None
            else None
        ),
        "num_speculative_tokens": dep.num_speculative_tokens,
        "mtp_acceptance_rates": acceptance_rates(dep) if dep.num_speculative_tokens else None,
        "max_num_batched_tokens": dep.max_num_batched_tokens,
        "max_num_seqs": dep.max_num_seqs,
        "gpu_memory_utilization": dep.gpu_memory_utilization,
        "kv_cache_dtype": dep.kv_cache_dtype,
        "block_size": dep.block_size,
        "max_model_len": dep.max_model_len,
        "async_scheduling": dep.async_scheduling,
        "cudagraph_mode": dep.cudagraph_mode,
        "attention_backend": dep.attention_backend,
        "kv_transfer_link": dep.kv_transfer_link if dep.disaggregated else None,
        "weights_bytes_per_gpu": plan.weights_bytes,
        "kv_cache_bytes_per_gpu": plan.kv_cache_bytes,
        "kv_capacity_tokens_per_engine": plan.kv_capacity_tokens,
        "bench": {
            k: ("inf" if isinstance(v, float) and math.isinf(v) else v)
            for k, v in cfg.model_dump(mode="python").items()
        },
    }
