"""One operator of one layer on one GPU, as perfsim costs it: for comparing with kernel microbenchmarks.

A probe costs a step of ``sequences`` prefill requests of ``seq_len`` new tokens on one GPU (TP1, no EP) and
returns the time of the named operator family per layer: ``mla_prefill_attention`` (the causal MHA of dense
MLA prefill, as FlashInfer / TRT-LLM ragged prefill kernels run it) or ``moe_routed_experts`` (quantize,
permute, the two grouped GEMMs with the activation, finalize: a fused MoE kernel's work).
"""

from __future__ import annotations

from perfsim.costs.params import CostParams
from perfsim.costs.step import StepCostModel
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model

#: operators of each probed kernel family
PROBES: dict[str, tuple[str, ...]] = {
    "mla_prefill_attention": ("attn_prefill_mha",),
    "moe_routed_experts": ("moe_permute_quant", "moe_gate_up", "moe_act", "moe_down", "moe_finalize"),
}

#: the cost parameters each probe's time depends on (a GEMM efficiency by the routed experts' weight dtype)
PROBE_PARAMS: dict[str, tuple[str, ...]] = {
    "mla_prefill_attention": ("attn_prefill_eff", "attn_exp_serial", "hbm_eff", "mem_ramp_s"),
    "moe_routed_experts": (
        "gemm_eff_{routed_experts}",
        "gemm_m_half_tokens",
        "gemm_nk_half",
        "gemm_mem_serial",
        "hbm_eff",
        "mem_ramp_s",
    ),
}


def probe_params(op: str, model: Model) -> set[str]:
    """The cost parameters probe ``op`` depends on for ``model``."""
    return {name.format(**model.recipe.module_dtypes) for name in PROBE_PARAMS[op]}


def probe_time_s(
    op: str, model: Model, hw: HardwareSpec, params: CostParams, sequences: int, seq_len: int
) -> float:
    """Seconds per layer of operator family ``op`` for ``sequences`` prefills of ``seq_len`` tokens on one GPU."""
    names = PROBES[op]
    dep = resolve_deployment(Deployment(max_num_batched_tokens=sequences * seq_len), model, hw, 1)
    cm = StepCostModel(model, hw, dep, params)
    cost = cm.step(cm.stats([seq_len] * sequences, [0] * sequences))
    ops = [o for o in cost.ops if o.name in names]
    return sum(o.time_s / o.layers for o in ops)
