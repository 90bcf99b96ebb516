"""Memory plan of one GPU: weights by module, activation peak, KV cache capacity (vLLM's formula).

vLLM 0.14.1 sizes the KV cache as
``gpu_memory_utilization x total_memory - weights - activation_peak(profile run) - non_torch``
[v1/worker/gpu_worker.py:283-365], in blocks of ``block_size`` tokens, minus one null block.
MLA's latent KV is replicated on every TP rank, so KV bytes per token do not shrink with TP.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from perfsim.costs.all2all.deepep_low_latency import DP_CHUNK_TOKENS
from perfsim.costs.mxfp4_moe import expert_padding
from perfsim.errors import DoesNotFitError, SpecError
from perfsim.specs.deployment import Deployment, ResolvedDeployment, resolve_deployment
from perfsim.specs.dtypes import ACT_BYTES, FP32_BYTES, INDEX_BYTES, WEIGHT_BYTES
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.kv_cache import indexer_key_bytes, kv_bytes_per_token_layer
from perfsim.specs.model import Model

GiB = 2**30

#: Memory outside PyTorch's allocator that the profile run sees grow (NCCL buffers, cuBLAS / FlashInfer
#: workspaces). vLLM measures it; perfsim assumes this figure (unverified order of magnitude).
NON_TORCH_BYTES = 1.5 * GiB
#: Live bf16 copies of a [tokens, hidden] activation at the peak of a dummy forward (residual, hidden
#: states, normed input, MoE output, o_proj output): an estimate, not a measurement.
HIDDEN_COPIES_AT_PEAK = 5
#: vLLM's fused-MoE activation chunk (VLLM_FUSED_MOE_CHUNK_SIZE default) [envs.py:59]
FUSED_MOE_CHUNK_TOKENS = 16384
#: fp32 logits copies held by the sampler during the profile run (logits + processed logits)
SAMPLER_LOGITS_COPIES = 2
#: V3.2 indexer: K-cache gather buffer of this many x max_model_len key entries [v1/attention/backends/mla/indexer.py:188]
INDEXER_WORKSPACE_PER_MAX_LEN = 40
#: FlashMLA sparse prefill: BF16 latent workspace of this many x max_model_len tokens, FP8 cache only
#: [v1/attention/backends/mla/flashmla_sparse.py:367]
SPARSE_PREFILL_WORKSPACE_PER_MAX_LEN = 5
#: dense MLA chunked-prefill context workspace, in tokens: min(max(8 x max_model_len, 4 x max_num_seqs x
#: block_size), 64k), at least max_num_seqs x block_size [v1/attention/backends/mla/common.py:524-552]
MLA_WORKSPACE_MAX_LEN_FACTOR, MLA_WORKSPACE_PAGES_PER_SEQ, MLA_WORKSPACE_CAP_TOKENS = 8, 4, 64 * 1024


@dataclass(frozen=True)
class WeightShare:
    """Bytes of one module class on one GPU."""

    module: str
    params_per_gpu: float
    dtype: str
    bytes_per_gpu: float


@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU memory of a deployment: weights, activation peak, KV capacity (bytes and tokens)."""

    usable_bytes: float
    budget_bytes: float  # gpu_memory_utilization x usable
    weights: tuple[WeightShare, ...]
    activation_peak_bytes: float
    non_torch_bytes: float
    kv_bytes_per_token: float  # one GPU, all attention layers (main + MTP)
    kv_bytes_per_token_layer: int
    kv_layers: int
    block_size: int
    num_gpu_blocks: int  # usable blocks (null block removed)

    @property
    def weights_bytes(self) -> float:
        """Total weight bytes on one GPU."""
        return sum(w.bytes_per_gpu for w in self.weights)

    @property
    def kv_cache_bytes(self) -> float:
        """Bytes left for the KV cache (may be negative when nothing fits)."""
        return self.budget_bytes - self.weights_bytes - self.activation_peak_bytes - self.non_torch_bytes

    @property
    def kv_capacity_tokens(self) -> int:
        """Tokens the KV cache of one engine (one DP rank) holds."""
        return self.num_gpu_blocks * self.block_size

    def fits(self, max_model_len: int) -> bool:
        """Whether the KV cache holds one request of ``max_model_len`` tokens (vLLM's start-up check)."""
        return self.kv_cache_bytes >= self.kv_bytes_per_token * max_model_len


def weight_shares(
    model: Model,
    *,
    tp: int = 1,
    moe_gpus: int = 1,
    with_mtp: bool = False,
    runtime_copies: bool = True,
    redundant_experts: int = 0,
    expert_scale: float = 1.0,
) -> list[WeightShare]:
    """Weight bytes per module class on one GPU, following vLLM's sharding.

    MLA models: replicated on every rank: fused q_a/kv_a projection, the V3.2 indexer, norms, router. GQA models:
    the fused qkv projection split by heads (KV heads replicated when TP exceeds them). Split by TP:
    q_b, kv_b, o_proj, dense MLPs, shared experts, embedding and lm_head (vocab-parallel). Routed experts
    are split over all TP x DP GPUs (by intermediate dimension, or as whole experts with EP).
    ``tp`` is the attention/dense tensor parallelism, ``moe_gpus`` the GPUs sharing the routed experts
    (TP x DP), ``with_mtp`` adds the MTP layer loaded for speculative decoding. ``runtime_copies`` adds the BF16 W_UK/W_UV copies vLLM derives from kv_b at load time.
    ``redundant_experts``: EPLB's replicas, held besides the routed experts; ``expert_scale``: their padding.
    """
    arch, rec = model.arch, model.recipe
    attn = arch.attention_params()
    idx = arch.indexer_params()
    n_layers = arch.num_layers
    shares: list[tuple[str, float, str]] = []

    def add(module: str, params: float, dtype: str) -> None:
        shares.append((module, params, dtype))

    def decoder_layers(prefix: str, n: int, n_dense: int, mtp: bool) -> None:
        def dt(module_class: str) -> str:
            return rec.dtype(module_class, mtp=mtp)

        if arch.gqa is not None:
            g = arch.gqa
            kv_heads = max(1.0, g.num_kv_heads / tp)  # vLLM replicates KV heads when TP exceeds them
            qkv = arch.hidden_size * g.head_dim * (g.num_heads / tp + 2 * kv_heads)
            add(f"{prefix}attn_qkv", n * qkv, dt("qkv"))
            add(f"{prefix}attn_o_proj", n * attn["o_proj"] / tp, dt("o_proj"))
            add(f"{prefix}norms", n * (attn["attn_norms"] + 2 * arch.hidden_size), "bf16")
            feed_forward(prefix, n, n_dense, dt)
            return
        add(f"{prefix}attn_qkv_a", n * (attn["q_a"] + attn["kv_a"]), dt("q_a"))
        add(f"{prefix}attn_q_b", n * attn["q_b"] / tp, dt("q_b"))
        add(f"{prefix}attn_kv_b", n * attn["kv_b"] / tp, dt("kv_b"))
        # MLA keeps dequantized BF16 copies of W_UK / W_UV (from kv_b) for the absorbed form [common.py:1631]
        if runtime_copies and dt("kv_b") != "bf16":  # a BF16 kv_b is used in place (W_UK / W_UV are views)
            add(f"{prefix}attn_kv_b_bf16_copy", n * attn["kv_b"] / tp, "bf16")
        add(f"{prefix}attn_o_proj", n * attn["o_proj"] / tp, dt("o_proj"))
        add(f"{prefix}norms", n * (attn["attn_norms"] + 2 * arch.hidden_size), "bf16")
        if arch.indexer is not None:
            add(f"{prefix}indexer", n * idx["indexer"], dt("indexer"))
            add(f"{prefix}indexer_weights_proj", n * idx["indexer_weights_proj"], "bf16")
        feed_forward(prefix, n, n_dense, dt)

    def feed_forward(prefix: str, n: int, n_dense: int, dt) -> None:
        n_moe = n - n_dense
        add(f"{prefix}dense_mlp", n_dense * arch.dense_mlp_params / tp, dt("dense_mlp"))
        if arch.moe is None:
            return
        add(f"{prefix}router", n_moe * arch.router_params, "bf16")
        add(
            f"{prefix}shared_experts",
            n_moe * arch.moe.num_shared_experts * arch.expert_params / tp,
            dt("shared_expert"),
        )
        add(
            f"{prefix}routed_experts",
            n_moe * (arch.moe.num_experts + redundant_experts) * arch.expert_params / moe_gpus * expert_scale,
            dt("routed_experts"),
        )

    decoder_layers("", n_layers, arch.num_dense_layers, mtp=False)
    add("embedding", arch.embedding_params / tp, rec.dtype("embedding"))
    add("lm_head", (arch.lm_head_params or 0) / tp, rec.dtype("lm_head"))
    add("norms", arch.hidden_size, "bf16")
    if with_mtp:
        decoder_layers("mtp_", 1, 0, mtp=True)
        h = arch.hidden_size
        add("mtp_eh_proj", 2 * h * h, "bf16")
        add("mtp_norms", 3 * h, "bf16")
        add("mtp_lm_head", arch.vocab_size * h / tp, "bf16")  # DeepSeekMTP loads its own shared_head.head
    return [
        WeightShare(module=m, params_per_gpu=p, dtype=d, bytes_per_gpu=p * WEIGHT_BYTES[d])
        for m, p, d in shares
        if p > 0
    ]


def activation_peak_bytes(model: Model, dep: ResolvedDeployment) -> float:
    """Estimated activation peak of vLLM's profile run (a dummy forward of max_num_batched_tokens).

    Counts hidden-state copies, the MoE intermediate of one fused-MoE chunk, fixed attention workspaces
    (dense MLA's context up-projection buffer; V3.2's indexer K and FP8 prefill workspaces and top-k
    indices) and the sampler's fp32 logits. An estimate; the KV capacity it implies is reported.
    """
    arch = model.arch
    tokens = dep.max_num_batched_tokens
    h = arch.hidden_size
    hidden = HIDDEN_COPIES_AT_PEAK * tokens * h * ACT_BYTES
    moe_tokens = min(tokens * dep.dp, FUSED_MOE_CHUNK_TOKENS)  # MoE layers see every DP rank's tokens
    if arch.moe is not None:
        inter = dep.expert_slice(arch.moe.intermediate_size)
        moe: float = moe_tokens * arch.moe.top_k * (2 * inter + h) * ACT_BYTES
    else:
        moe = tokens * 2 * arch.dense_intermediate_size / dep.tp * ACT_BYTES
    if arch.mla is None:  # GQA: attention runs in place on the cache; the MLP intermediate dominates
        attn = 0.0
    elif arch.indexer is not None:
        ml = dep.max_model_len
        attn = INDEXER_WORKSPACE_PER_MAX_LEN * ml * indexer_key_bytes(arch.indexer)
        if dep.kv_fp8:
            attn += SPARSE_PREFILL_WORKSPACE_PER_MAX_LEN * ml * arch.mla.latent_dim * ACT_BYTES
        # top-k indices of every token (a second buffer for the MTP drafter's)
        attn += tokens * arch.indexer.topk * INDEX_BYTES * (2 if dep.num_speculative_tokens else 1)
    else:
        ws = min(
            max(
                MLA_WORKSPACE_MAX_LEN_FACTOR * dep.max_model_len,
                MLA_WORKSPACE_PAGES_PER_SEQ * dep.max_num_seqs * dep.block_size,
            ),
            MLA_WORKSPACE_CAP_TOKENS,
        )
        ws = max(ws, dep.max_num_seqs * dep.block_size)
        heads = arch.mla.num_heads // dep.tp
        attn = ws * heads * (arch.mla.qk_nope_head_dim + arch.mla.v_head_dim) * ACT_BYTES
    rows = min(dep.max_num_seqs, tokens) * (1 + dep.num_speculative_tokens)
    logits = SAMPLER_LOGITS_COPIES * rows * arch.vocab_size * FP32_BYTES
    return float(hidden + moe + attn + logits)


def kv_group_layers(model: Model) -> int:
    """Layers whose KV one block-pool slot stands for: every layer, or with sliding-window layers one KV-cache
    group of vLLM's hybrid allocator (gpt-oss: 18 full-attention and 18 sliding layers share a pool whose blocks
    each hold one group; a request's sliding-window group needs only its last window's blocks, which this
    capacity leaves out)."""
    arch = model.arch
    sliding = arch.num_sliding_layers
    return max(arch.num_layers - sliding, sliding) if sliding else arch.num_layers


def redundant_experts(model: Model, dep: ResolvedDeployment) -> int:
    """EPLB's replicas of routed experts (physical minus logical experts; 0 without EPLB)."""
    moe = model.arch.moe
    return max(dep.physical_experts - moe.num_experts, 0) if moe is not None and dep.eplb else 0


#: DeepEP's NVLink buffer, and its RDMA buffer across nodes: VLLM_DEEPEP_BUFFER_SIZE_MB = 1024 each [all2all.py:292-312]
DEEPEP_HT_BUFFER_BYTES = 1024 * 2**20


def all2all_buffer_bytes(model: Model, hw: HardwareSpec, dep: ResolvedDeployment) -> float:
    """Communication buffers DeepEP allocates per GPU outside PyTorch's allocator (0 for NCCL backends).

    Low latency: DeepEP's RDMA size hint for 256-token chunks, about 4 x physical experts x 256 x (2H + H/32)
    bytes (3.8 GB for DeepSeek-R1) [all2all.py:371-376; DeepEP csrc/config.hpp:152-171]."""
    moe = model.arch.moe
    if moe is None or dep.ep <= 1 or dep.dp <= 1:
        return 0.0
    h = model.arch.hidden_size
    if dep.all2all_backend == "deepep_low_latency":
        return 4.0 * (dep.physical_experts or moe.num_experts) * DP_CHUNK_TOKENS * (2 * h + h / 32)
    if dep.all2all_backend == "deepep_high_throughput":
        return DEEPEP_HT_BUFFER_BYTES * (2 if dep.ep > hw.node_gpus else 1)
    return 0.0


def memory_plan(model: Model, hw: HardwareSpec, dep: ResolvedDeployment) -> MemoryPlan:
    """Per-GPU memory plan and KV capacity by vLLM's formula."""
    weights = tuple(
        weight_shares(
            model,
            tp=dep.tp,
            moe_gpus=dep.tp * dep.dp,
            with_mtp=dep.num_speculative_tokens > 0,
            redundant_experts=redundant_experts(model, dep),
            expert_scale=expert_padding(model, hw, dep),
        )
    )
    usable = hw.hbm_usable_bytes
    budget = math.ceil(usable * dep.gpu_memory_utilization)
    act = activation_peak_bytes(model, dep)
    per_layer = kv_bytes_per_token_layer(model, dep.kv_cache_dtype, dep.tp)
    layers = kv_group_layers(model) + (1 if dep.num_speculative_tokens else 0)
    per_token = per_layer * layers
    plan = MemoryPlan(
        usable_bytes=usable,
        budget_bytes=budget,
        weights=weights,
        activation_peak_bytes=act,
        non_torch_bytes=NON_TORCH_BYTES + all2all_buffer_bytes(model, hw, dep),
        kv_bytes_per_token=per_token,
        kv_bytes_per_token_layer=per_layer,
        kv_layers=layers,
        block_size=dep.block_size,
        num_gpu_blocks=0,
    )
    free = plan.kv_cache_bytes
    blocks = (
        max(0, math.floor(free / (per_token * dep.block_size)) - 1) if free > 0 else 0
    )  # minus the null block
    return dataclasses.replace(plan, num_gpu_blocks=blocks)


def check_fits(model: Model, hw: HardwareSpec, dep: ResolvedDeployment) -> MemoryPlan:
    """The memory plan, or ``DoesNotFitError`` saying by how much and what would fit.

    Like vLLM, a deployment fits when its KV cache holds at least one request of ``max_model_len`` tokens.
    """
    plan = memory_plan(model, hw, dep)
    if plan.fits(dep.max_model_len):
        return plan
    need = plan.kv_bytes_per_token * dep.max_model_len
    short = need - plan.kv_cache_bytes
    suggestion = ""
    fit_tp = smallest_fitting_tp(
        model,
        hw,
        Deployment(
            data_parallel_size=dep.dp,
            enable_expert_parallel=dep.ep > 1,
            num_speculative_tokens=dep.num_speculative_tokens,
            max_model_len=dep.max_model_len,
            gpu_memory_utilization=dep.gpu_memory_utilization,
        ),
    )
    if fit_tp is not None and fit_tp != dep.tp:
        suggestion = f" The smallest tensor parallelism that fits is -tp {fit_tp}."
    raise DoesNotFitError(
        f"{model.name} ({model.precision}) does not fit on {dep.tp * dep.dp} x {hw.name} with -tp {dep.tp}"
        f"{' -dp ' + str(dep.dp) if dep.dp > 1 else ''}: weights take {plan.weights_bytes / GiB:.1f} GiB per GPU, "
        f"activations and workspaces ~{(plan.activation_peak_bytes + plan.non_torch_bytes) / GiB:.1f} GiB, of a "
        f"{plan.budget_bytes / GiB:.1f} GiB budget (gpu_memory_utilization {dep.gpu_memory_utilization} x "
        f"{plan.usable_bytes / GiB:.1f} GiB); the KV cache for one {dep.max_model_len}-token request needs "
        f"{need / GiB:.1f} GiB more: {short / GiB:.1f} GiB short.{suggestion}"
    )


def no_fitting_tp_message(model: Model, hw: HardwareSpec) -> str:
    """Why automatic TP found nothing: the model does not fit any TP group inside one scale-up domain."""
    return (
        f"{model.name} ({model.precision}) does not fit on any tensor-parallel group of {hw.name} "
        f"within its {hw.scaleup_domain_gpus}-GPU scale-up domain"
    )


def smallest_fitting_tp(model: Model, hw: HardwareSpec, dep: Deployment) -> int | None:
    """The smallest power-of-two TP (dividing the heads, within the scale-up domain) whose plan fits.

    Returns None when none fits; re-raises the configuration error when no TP is even possible.
    """
    first_error: SpecError | None = None
    possible = False
    tp = 1
    while tp <= max(hw.scaleup_domain_gpus, 1) and tp <= model.arch.num_attention_heads:
        if model.arch.num_attention_heads % tp == 0:
            try:
                resolved = resolve_deployment(dep, model, hw, tp)
            except SpecError as exc:
                first_error = first_error or exc
            else:
                possible = True
                plan = memory_plan(model, hw, resolved)
                if plan.fits(resolved.max_model_len):
                    return tp
        tp *= 2
    if not possible and first_error is not None:
        raise first_error
    return None


def model_weight_bytes(model: Model) -> float:
    """Bytes of the model's weights (main layers, no MTP, no runtime copies) at its precision."""
    return sum(w.bytes_per_gpu for w in weight_shares(model, runtime_copies=False))


def plan_deployment(model: Model, hw: HardwareSpec, dep: Deployment) -> tuple[ResolvedDeployment, MemoryPlan]:
    """Resolve vLLM defaults (auto TP: the smallest that fits) and check the memory plan."""
    resolved, plan, _notes = plan_deployment_noted(model, hw, dep)
    return resolved, plan


def plan_deployment_noted(
    model: Model, hw: HardwareSpec, dep: Deployment, *, must_fit: bool = True
) -> tuple[ResolvedDeployment, MemoryPlan, list[str]]:
    """``plan_deployment`` with notes; ``must_fit=False`` (costing a single step) keeps a deployment that does
    not fit, with a note saying so, instead of refusing it."""
    notes: list[str] = []
    tp = dep.tensor_parallel_size or smallest_fitting_tp(model, hw, dep)
    if tp is None:
        message = no_fitting_tp_message(model, hw)
        if must_fit:
            raise DoesNotFitError(message)
        tp = min(hw.scaleup_domain_gpus, model.arch.num_attention_heads)
        notes.append(f"{message}; costing -tp {tp} anyway")
    resolved = resolve_deployment(dep, model, hw, tp)
    try:
        plan = check_fits(model, hw, resolved)
    except DoesNotFitError as exc:
        if must_fit:
            raise
        notes.append(f"{exc} (costing the step anyway)")
        plan = memory_plan(model, hw, resolved)
    if dep.heterogeneous_pd:
        decode = dep.decode_settings()
        decode_resolved = resolve_deployment(decode, model, hw, decode.tensor_parallel_size or tp)
        check_fits(model, hw, decode_resolved)
        resolved = dataclasses.replace(resolved, decode=decode_resolved)
    return resolved, plan, notes
