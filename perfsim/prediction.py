"""The main job: predict what ``vllm bench serve`` would measure for a deployment, as a result object.

``predict(...)`` resolves the specs, checks the memory plan, simulates the benchmark and returns a
``Prediction`` whose ``result`` dict has every key of ``vllm bench serve --save-result`` (0.14.1) with
the same meaning, plus perfsim's own keys: ``num_gpus`` and per-GPU throughputs, the resolved config,
the step-time breakdown, scheduler counters and the prediction's provenance and error band.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from perfsim import __version__
from perfsim.costs.memory import MemoryPlan, check_fits, no_fitting_tp_message, smallest_fitting_tp
from perfsim.costs.params import CostParams
from perfsim.errors import DoesNotFitError, SpecError
from perfsim.serving.metrics import bench_metrics
from perfsim.serving.simulate import SimulationResult, acceptance_rates, simulate
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import VLLM_VERSION, Deployment, ResolvedDeployment, resolve_deployment
from perfsim.specs.hardware import HardwareSpec, load_hardware
from perfsim.specs.loading import validation_error_to_spec_error
from perfsim.specs.model import Model, load_model

#: The two published headline scenarios of DeepSeek-V3.2 NVFP4 on GB300 (vLLM blog, 2026-02-13).
HEADLINE_SCENARIOS: dict[str, BenchConfig] = {
    "prefill-only ISL 2048 / OSL 1": BenchConfig(
        random_input_len=2048, random_output_len=1, max_concurrency=64, num_prompts=1000
    ),
    "mixed ISL 2048 / OSL 1024": BenchConfig(
        random_input_len=2048, random_output_len=1024, max_concurrency=256, num_prompts=1000
    ),
}


@dataclass
class Prediction:
    """One predicted benchmark run: bench-serve metrics plus perfsim's explanations."""

    label: str
    result: dict[str, Any]
    model: Model
    hw: HardwareSpec
    deployment: ResolvedDeployment
    plan: MemoryPlan
    bench: BenchConfig
    simulation: SimulationResult
    notes: list[str] = field(default_factory=list)

    @property
    def num_gpus(self) -> int:
        """Every GPU of the deployment."""
        return self.deployment.num_gpus

    def __getitem__(self, key: str) -> Any:
        return self.result[key]

    def summary(self) -> str:
        """Human-readable summary in the shape of ``vllm bench serve``'s, with per-GPU figures."""
        from perfsim.report_predict import format_prediction

        return format_prediction(self)


def _bench_date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = float(epoch) if epoch and epoch.isdigit() else 0.0
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(stamp))


def build_settings(cls, values: dict | None, what: str):
    """``cls(**values)`` for a pydantic settings class; errors become one ``SpecError`` naming the fields."""
    from pydantic import ValidationError

    try:
        return cls(**(values or {}))
    except ValidationError as exc:
        raise SpecError(f"invalid {what} settings: {validation_error_to_spec_error(exc, None)}") from None
    except TypeError as exc:
        raise SpecError(f"invalid {what} settings: {exc}") from None


def resolve(model: Model, hw: HardwareSpec, dep: Deployment) -> tuple[ResolvedDeployment, MemoryPlan]:
    """Resolve vLLM defaults (auto TP: the smallest that fits) and check the memory plan."""
    tp = dep.tensor_parallel_size or smallest_fitting_tp(model, hw, dep)
    if tp is None:
        raise DoesNotFitError(no_fitting_tp_message(model, hw))
    resolved = resolve_deployment(dep, model, hw, tp)
    return resolved, check_fits(model, hw, resolved)


def predict(
    model: str | Model = "deepseek-v3.2",
    hw: str | HardwareSpec = "gb300",
    precision: str = "fp4",
    deployment: Deployment | dict | None = None,
    bench: BenchConfig | dict | None = None,
    *,
    params: CostParams | None = None,
    calibration: str | None = "default",
    label: str = "",
    progress: bool = False,
) -> Prediction:
    """Predict one ``vllm bench serve`` run.

    ``model``/``hw`` are names, paths or loaded specs; ``deployment`` and ``bench`` take the vLLM flag names
    as fields. ``params`` overrides the cost parameters; otherwise ``calibration`` names a profile
    ('default' picks the vLLM profile, 'none' the spec-only prediction).
    """
    from perfsim.calibration.profiles import load_params, prediction_band

    m = model if isinstance(model, Model) else load_model(model, precision)
    gpu = hw if isinstance(hw, HardwareSpec) else load_hardware(hw)
    dep = (
        deployment
        if isinstance(deployment, Deployment)
        else build_settings(Deployment, deployment, "deployment")
    )
    cfg = bench if isinstance(bench, BenchConfig) else build_settings(BenchConfig, bench, "bench")
    resolved, plan = resolve(m, gpu, dep)
    if params is None:
        params, provenance = load_params(calibration, gpu)
    else:
        provenance = "custom parameters"
        calibration = None
    sim = simulate(m, gpu, resolved, plan, params, cfg, progress=progress)
    metrics = bench_metrics(
        sim.view,
        sim.duration_s,
        num_sent=sim.num_sent,
        percentiles=cfg.percentiles(),
        selected=cfg.selected_metrics(),
    )
    notes = list(resolved.notes)
    if cfg.random_prefix_len:
        notes.append(
            "prefix caching is not modelled: the shared random prefix is recomputed for every request "
            "(vLLM would serve it from its prefix cache)"
        )
    result = _result_json(m, gpu, resolved, plan, cfg, sim, metrics, label)
    if provenance == "custom parameters":
        band = {"provenance": "custom parameters", "error_band": None, "notes": []}
    else:
        band = prediction_band(calibration, m, gpu, resolved, cfg)
    result["prediction"] = {"calibration": provenance, **band}
    notes += band.get("notes", [])
    result["notes"] = notes
    return Prediction(label, result, m, gpu, resolved, plan, cfg, sim, notes)


def _result_json(
    m: Model,
    hw: HardwareSpec,
    dep: ResolvedDeployment,
    plan: MemoryPlan,
    cfg: BenchConfig,
    sim: SimulationResult,
    metrics: dict,
    label: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "date": _bench_date(),
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
            metrics["total_output_tokens"] / dur / (dep.gpus_per_instance * dep.num_decode_instances)
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
        "hw": hw.name,
        "vllm_version": VLLM_VERSION,
        "tensor_parallel_size": dep.tp,
        "data_parallel_size": dep.dp,
        "expert_parallel_size": dep.ep,
        "enable_expert_parallel": dep.ep > 1,
        "num_instances": dep.num_instances,
        "num_prefill_instances": dep.num_prefill_instances,
        "num_decode_instances": dep.num_decode_instances,
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
