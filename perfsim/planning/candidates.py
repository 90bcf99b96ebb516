"""The deployments a plan considers: every combination of the search space that vLLM would start, on at most
``max_gpus`` GPUs, split into those that fit the GPUs' memory and those pruned (with vLLM's reason)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from perfsim.costs.memory import plan_deployment
from perfsim.errors import PerfsimError
from perfsim.planning.config import PlanConfig
from perfsim.specs.deployment import Deployment
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model

DEEPEP = ("deepep_high_throughput", "deepep_low_latency")


@dataclass(frozen=True)
class Candidate:
    """One deployment: its ``vllm serve`` settings (Deployment field names) and the GPUs it takes."""

    settings: dict[str, Any]
    num_gpus: int


@dataclass(frozen=True)
class Pruned:
    """A deployment that was not simulated, and why (vLLM's reason, e.g. the weights do not fit)."""

    settings: dict[str, Any]
    num_gpus: int
    reason: str


def _powers_of_two(limit: int) -> list[int]:
    return [2**k for k in range(limit.bit_length()) if 2**k <= limit]


def _choices(choice: str) -> list[bool]:
    return {"both": [False, True], "on": [True], "off": [False]}[choice]


def _parallel_variants(model: Model, tp: int, dp: int, cfg: PlanConfig) -> list[dict[str, Any]]:
    """Expert parallelism, all-to-all backend, DBO and EPLB for one TP x DP shape."""
    ranks = tp * dp
    moe = model.arch.moe is not None and ranks > 1
    out: list[dict[str, Any]] = []
    for ep in _choices(cfg.expert_parallel) if moe else [False]:
        planned: list[str] = (
            list(cfg.all2all_backend) if cfg.all2all_backend else ["allgather_reducescatter", *DEEPEP]
        )
        backends: list[str | None] = [*planned] if ep and dp > 1 else [None]
        for backend in backends:
            for dbo in _choices(cfg.enable_dbo) if backend in DEEPEP else [False]:
                for eplb in _choices(cfg.enable_eplb) if ep and ranks >= 8 else [False]:
                    settings: dict[str, Any] = {"enable_expert_parallel": ep}
                    if backend is not None:
                        settings["all2all_backend"] = backend
                    if dbo:
                        settings["enable_dbo"] = True
                    if (
                        eplb
                    ):  # the fewest redundant experts that spread evenly over the ranks (at least one each)
                        experts = model.arch.moe.num_experts if model.arch.moe else 0
                        redundant = (-experts) % ranks or ranks
                        settings.update(enable_eplb=True, eplb_config={"num_redundant_experts": redundant})
                    out.append(settings)
    return out


def _layouts(tp: int, dp: int, ep: bool, cfg: PlanConfig) -> list[tuple[dict[str, Any], int]]:
    """Replicas and P/D splits (with the decode shapes of ``decode_data_parallel_size``) of one instance shape:
    (settings, GPUs)."""
    per_instance = tp * dp
    out: list[tuple[dict[str, Any], int]] = []
    if cfg.disaggregated != "on":
        for n in _powers_of_two(cfg.max_gpus // per_instance) if cfg.replicas != "off" else [1]:
            if n > 1 or cfg.replicas != "on":
                out.append(({"num_instances": n} if n > 1 else {}, n * per_instance))
    if cfg.disaggregated != "off":
        decode_dps = [None, *(x for x in cfg.decode_data_parallel_size or [] if x != dp)]
        for ratio, decode_dp in itertools.product(cfg.pd_ratios, decode_dps):
            p, d = (int(x) for x in ratio.split(":"))
            gpus = p * per_instance + d * tp * (decode_dp or dp)
            if gpus > cfg.max_gpus:
                continue
            settings: dict[str, Any] = {"num_prefill_instances": p, "num_decode_instances": d}
            if decode_dp is not None:
                settings["decode_data_parallel_size"] = decode_dp
                if ep and decode_dp > 1:
                    settings["decode_all2all_backend"] = "deepep_low_latency"
            out.append((settings, gpus))
    return [(s, g) for s, g in out if cfg.gpus is None or g == cfg.gpus]


def enumerate_candidates(
    model: Model, hw: HardwareSpec, cfg: PlanConfig
) -> tuple[list[Candidate], list[Pruned]]:
    """Every deployment of the search space, in a fixed order: those that fit, and those pruned."""
    tps = cfg.tensor_parallel_size or _powers_of_two(min(cfg.max_gpus, hw.scaleup_domain_gpus))
    dps = cfg.data_parallel_size or _powers_of_two(cfg.max_gpus)
    mtps = [m for m in cfg.num_speculative_tokens or [0] if m == 0 or model.arch.num_mtp_layers]
    budgets: list[int | None] = list(cfg.max_num_batched_tokens) if cfg.max_num_batched_tokens else [None]
    caps: list[int | None] = list(cfg.max_num_seqs) if cfg.max_num_seqs else [None]
    fitting: list[Candidate] = []
    pruned: list[Pruned] = []
    for tp, dp in itertools.product(tps, dps):
        if tp * dp > cfg.max_gpus:
            continue
        for parallel in _parallel_variants(model, tp, dp, cfg):
            layouts = _layouts(tp, dp, bool(parallel.get("enable_expert_parallel")), cfg)
            for (layout, gpus), mtp, budget, cap in itertools.product(layouts, mtps, budgets, caps):
                settings: dict[str, Any] = {
                    "tensor_parallel_size": tp,
                    "data_parallel_size": dp,
                    **parallel,
                    **layout,
                }
                if mtp:
                    settings["num_speculative_tokens"] = mtp
                if budget is not None:
                    settings["max_num_batched_tokens"] = budget
                if cap is not None:
                    settings["max_num_seqs"] = cap
                try:
                    plan_deployment(model, hw, Deployment(**settings))
                except (PerfsimError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
                    pruned.append(Pruned(settings=settings, num_gpus=gpus, reason=" ".join(str(exc).split())))
                    continue
                fitting.append(Candidate(settings=settings, num_gpus=gpus))
    return fitting, pruned
