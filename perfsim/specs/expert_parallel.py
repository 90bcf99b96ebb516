"""Expert placement: how an instance's TP x DP GPUs hold the routed experts, with vLLM 0.14.1's rules.

Without expert parallelism every GPU holds a 1/(TP x DP) slice of every expert. With it (EP = TP x DP), each GPU
holds whole experts; EPLB (``--enable-eplb``) adds ``num_redundant_experts`` replicas of the most loaded experts,
so that ``num_experts + num_redundant_experts`` physical experts split evenly over the ranks: vLLM asserts this
[model_executor/layers/fused_moe/layer.py:472-476], which is how EP sizes that do not divide 256 (EP72, EP96) run.
The all-to-all backend moves the tokens between the ranks of an expert-parallel group with DP > 1 [vLLM
config/parallel.py:40-47, ``use_all2all_kernels``].
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from perfsim.errors import SpecError
from perfsim.specs.loading import parse_json
from perfsim.specs.model import Model

#: vLLM 0.14.1's --all2all-backend choices [config/parallel.py:40-47]
All2AllBackendName = Literal[
    "allgather_reducescatter",
    "naive",
    "pplx",
    "deepep_high_throughput",
    "deepep_low_latency",
    "flashinfer_all2allv",
]
#: the backends perfsim costs (the others are refused with this list)
MODELLED_ALL2ALL = ("allgather_reducescatter", "deepep_high_throughput", "deepep_low_latency")
DEEPEP_BACKENDS = ("deepep_high_throughput", "deepep_low_latency")


class EplbConfig(BaseModel):
    """vLLM's ``--eplb-config`` (JSON): redundant experts and how often the placement is rebalanced."""

    model_config = ConfigDict(extra="forbid")

    num_redundant_experts: int = Field(
        default=0,
        ge=0,
        description="Replicas of the most loaded experts added to the routed experts (count).",
    )
    window_size: int = Field(default=1000, ge=1, description="Steps of expert load the rebalancing looks at.")
    step_interval: int = Field(default=3000, ge=1, description="Steps between two rebalancings.")
    log_balancedness: bool = Field(default=False, description="Log the balancedness (no effect on speed).")


def parse_eplb_config(value: Any) -> Any:
    """``--eplb-config`` as vLLM takes it: a JSON object (a string on the command line) or a mapping."""
    if isinstance(value, str):
        try:
            return parse_json(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"--eplb-config must be a JSON object such as '{{\"num_redundant_experts\": 32}}' ({exc.msg})"
            ) from None
    return value


@dataclass(frozen=True)
class ExpertPlacement:
    """Expert parallel group size, the split of each expert, and the physical experts over the EP ranks."""

    ep: int  # expert-parallel group size (1 = experts split by tensor parallelism)
    moe_tp: int  # tensor-parallel split of each expert's intermediate dimension
    physical_experts: int  # routed experts plus EPLB's redundant replicas (0 for dense models)
    eplb: bool
    all2all_backend: str

    @property
    def experts_per_rank(self) -> float:
        """Physical experts held by one EP rank."""
        return self.physical_experts / self.ep if self.ep else 0.0


def smallest_redundancy(num_experts: int, ep: int) -> int:
    """The fewest redundant experts that make ``num_experts + r`` divisible by ``ep``."""
    return (-num_experts) % ep


def resolve_expert_placement(
    model: Model,
    tp: int,
    dp: int,
    *,
    enable_expert_parallel: bool,
    enable_eplb: bool,
    num_redundant_experts: int,
    all2all_backend: str,
) -> ExpertPlacement:
    """Where the experts live for ``tp`` x ``dp`` GPUs, or ``SpecError`` naming the flag that makes it impossible."""
    moe = model.arch.moe
    group = tp * dp
    if all2all_backend not in MODELLED_ALL2ALL:
        raise SpecError(
            f"--all2all-backend {all2all_backend} is a vLLM backend perfsim does not model yet; modelled: "
            f"{', '.join(MODELLED_ALL2ALL)}",
            field="all2all_backend",
        )
    if moe is None:
        if enable_expert_parallel:
            raise SpecError(
                f"{model.name} has no MoE layers: expert parallelism does not apply",
                field="enable_expert_parallel",
            )
        return ExpertPlacement(
            ep=1, moe_tp=group, physical_experts=0, eplb=False, all2all_backend=all2all_backend
        )
    if enable_eplb and not enable_expert_parallel:
        raise SpecError(
            "--enable-eplb needs --enable-expert-parallel (vLLM rebalances whole experts)",
            field="enable_eplb",
        )
    if num_redundant_experts and not enable_eplb:
        raise SpecError(
            "--eplb-config num_redundant_experts needs --enable-eplb (vLLM adds replicas only with EPLB)",
            field="eplb_config",
        )
    if all2all_backend in DEEPEP_BACKENDS and not enable_expert_parallel:
        raise SpecError(
            f"--all2all-backend {all2all_backend} moves tokens between expert-parallel ranks: add "
            "--enable-expert-parallel",
            field="all2all_backend",
        )
    if not enable_expert_parallel:
        if moe.intermediate_size % group:
            raise SpecError(
                f"TP x DP = {group} does not divide the expert intermediate size {moe.intermediate_size}",
                field="data_parallel_size",
            )
        return ExpertPlacement(
            ep=1, moe_tp=group, physical_experts=moe.num_experts, eplb=False, all2all_backend=all2all_backend
        )
    physical = moe.num_experts + num_redundant_experts
    if physical % group:
        need = smallest_redundancy(moe.num_experts, group)
        hint = (
            f"add --enable-eplb --eplb-config '{{\"num_redundant_experts\": {need}}}' (or a multiple of {group} more)"
            if not enable_eplb
            else f"num_redundant_experts must make {moe.num_experts} + it a multiple of {group} (e.g. {need})"
        )
        raise SpecError(
            f"expert parallel size {group} (TP x DP) does not divide the {physical} "
            f"{'physical' if enable_eplb else 'routed'} experts: {hint}",
            field="eplb_config" if enable_eplb else "enable_expert_parallel",
        )
    return ExpertPlacement(
        ep=group, moe_tp=1, physical_experts=physical, eplb=enable_eplb, all2all_backend=all2all_backend
    )


def distinct_destination_ranks(num_experts: int, top_k: int, ep: int) -> float:
    """Expected number of EP ranks holding at least one of a token's ``top_k`` experts under uniform routing,
    with ``num_experts / ep`` experts per rank: ``ep x (1 - C(E - g, k) / C(E, k))``."""
    if ep <= 1:
        return 1.0
    g = num_experts / ep
    miss = 1.0
    for i in range(top_k):  # C(E-g, k) / C(E, k) as a product, valid for fractional g
        miss *= max(num_experts - g - i, 0.0) / (num_experts - i)
    return ep * (1.0 - miss)
