"""Deployment spec: parallelism, disaggregation, speculative decoding and vLLM engine settings.

``Deployment`` holds what the user says, with flag names as in ``vllm serve``; fields left as ``None``
mean "vLLM's default". ``resolve_deployment`` turns it, for a given model and GPU, into a
``ResolvedDeployment`` whose every value is concrete (vLLM 0.14.1 defaults applied, KV dtype and block
size resolved the way vLLM resolves them) and checks that the parallelism is possible.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from perfsim.errors import SpecError
from perfsim.specs.attention import AttentionBackend, resolve_block_size, select_backend
from perfsim.specs.cudagraphs import cudagraph_mode, default_max_capture_size
from perfsim.specs.expert_parallel import (
    DEEPEP_BACKENDS,
    All2AllBackendName,
    EplbConfig,
    parse_eplb_config,
    resolve_expert_placement,
)
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.kv_cache import resolve_kv_cache_dtype
from perfsim.specs.model import Model
from perfsim.specs.moe_kernels import mxfp4_moe_backend
from perfsim.specs.resolved import ResolvedDeployment
from perfsim.specs.serve_defaults import GPT_OSS_CAPTURE_CAP, serve_defaults
from perfsim.specs.speculative import speculative_tokens

VLLM_VERSION = "0.14.1"

KvCacheDtype = Literal["auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_ds_mla"]


#: decode-instance overrides of disaggregated serving, and the fields they set for the decode instances
DECODE_SHAPE_FIELDS = ("decode_tensor_parallel_size", "decode_data_parallel_size", "decode_all2all_backend")
DECODE_SHAPE_TARGETS = ("tensor_parallel_size", "data_parallel_size", "all2all_backend")


class Deployment(BaseModel):
    """How the model is served: parallelism, P/D split, MTP and vLLM engine arguments.

    Field names and flags follow ``vllm serve``; ``None`` means vLLM's default for the model and GPU.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    tensor_parallel_size: int | None = Field(
        default=None,
        ge=1,
        json_schema_extra={"cli": ["-tp", "--tensor-parallel-size"]},
        description="GPUs per tensor-parallel group (auto: the smallest power of two whose weights fit).",
    )
    data_parallel_size: int = Field(
        default=1,
        ge=1,
        json_schema_extra={"cli": ["-dp", "--data-parallel-size"]},
        description="Data-parallel ranks per instance, each with its own scheduler and KV cache.",
    )
    enable_expert_parallel: bool = Field(
        default=False,
        json_schema_extra={"cli": ["--enable-expert-parallel", "-ep"]},
        description="Place whole experts on the TP x DP GPUs (expert parallelism) instead of "
        "splitting every expert.",
    )
    all2all_backend: All2AllBackendName = Field(
        default="allgather_reducescatter",
        description="How MoE tokens move between the expert-parallel ranks of an instance with DP > 1 "
        "(vLLM 0.14.1's choices; modelled: allgather_reducescatter, deepep_high_throughput, deepep_low_latency).",
    )
    enable_eplb: bool = Field(
        default=False,
        description="Expert-parallel load balancing: replicate the most loaded experts (see --eplb-config).",
    )
    eplb_config: EplbConfig = Field(
        default_factory=EplbConfig,
        json_schema_extra={"metavar": "JSON"},
        description="EPLB settings as vLLM takes them, e.g. '{\"num_redundant_experts\": 32}'.",
    )
    enable_dbo: bool = Field(
        default=False,
        description="Dual-batch overlap: split each step into two micro-batches so that one's DeepEP dispatch "
        "and combine overlap the other's compute (needs DP > 1 and a DeepEP --all2all-backend).",
    )
    dbo_decode_token_threshold: int = Field(
        default=32, ge=1, description="Fewest tokens per rank for which DBO splits a decode-only step."
    )
    dbo_prefill_token_threshold: int = Field(
        default=512, ge=1, description="Fewest tokens per rank for which DBO splits a step with a prefill."
    )
    num_prefill_instances: int = Field(
        default=0, ge=0, description="Prefill instances for disaggregated serving (0 = aggregated)."
    )
    num_decode_instances: int = Field(
        default=0, ge=0, description="Decode instances for disaggregated serving (0 = aggregated)."
    )
    decode_tensor_parallel_size: int | None = Field(
        default=None,
        ge=1,
        description="TP of each decode instance when it differs from the prefill instances'.",
    )
    decode_data_parallel_size: int | None = Field(
        default=None,
        ge=1,
        description="DP of each decode instance when it differs from the prefill instances'.",
    )
    decode_all2all_backend: All2AllBackendName | None = Field(
        default=None, description="--all2all-backend of the decode instances (auto: the prefill instances')."
    )
    num_instances: int = Field(
        default=1, ge=1, description="Identical aggregated instances behind a round-robin router."
    )
    num_speculative_tokens: int = Field(
        default=0, ge=0, le=8, description="MTP draft tokens per step (speculative decoding; 0 = off)."
    )
    speculative_config: str | None = Field(
        default=None,
        json_schema_extra={"metavar": "JSON"},
        description='vLLM\'s speculative decoding JSON, e.g. \'{"method": "mtp", "num_speculative_tokens": 1}\' '
        "(MTP methods only); sets --num-speculative-tokens.",
    )
    mtp_acceptance_rate: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Probability that an MTP draft token is accepted "
        "(auto: per-position rates published for DeepSeek MTP).",
    )
    max_num_batched_tokens: int | None = Field(
        default=None, ge=1, description="Token budget of one engine step (auto: 8192 on >= 70 GiB GPUs)."
    )
    max_num_seqs: int | None = Field(
        default=None, ge=1, description="Maximum running requests per engine (auto: 1024 on >= 70 GiB GPUs)."
    )
    gpu_memory_utilization: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Fraction of GPU memory vLLM may use (weights + activations + KV).",
    )
    kv_cache_dtype: KvCacheDtype = Field(
        default="auto", description="KV cache dtype (auto: the checkpoint's kv_cache_quant_algo, else BF16)."
    )
    block_size: int | None = Field(
        default=None, ge=1, description="KV block size in tokens (auto: by attention backend)."
    )
    max_model_len: int | None = Field(
        default=None, ge=16, description="Maximum context length (auto: the model's max_position_embeddings)."
    )
    async_scheduling: bool = Field(
        default=True, description="Overlap CPU scheduling with GPU execution (vLLM 0.14 default: on)."
    )
    max_cudagraph_capture_size: int | None = Field(
        default=None,
        ge=1,
        description="Largest batch (tokens) captured in CUDA graphs (auto: min(2 x max_num_seqs x query "
        "length, 512, max_num_batched_tokens); gpt-oss raises the 512 to 1024).",
    )
    mxfp4_moe_activation: Literal["auto", "mxfp8", "bf16"] = Field(
        default="auto",
        description="Activations of MXFP4 expert GEMMs on Blackwell: mxfp8 (VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8=1, "
        "FP8 tensor-core rate) or bf16 (vLLM's default, the BF16 rate); Hopper always runs them weight-only.",
    )
    enforce_eager: bool = Field(
        default=False, description="Disable CUDA graphs (every kernel launched from Python)."
    )
    attention_backend: AttentionBackend = Field(
        default="auto",
        description="MLA attention backend (vLLM's --attention-backend; auto: vLLM 0.14.1's "
        "choice, except FLASHINFER_MLA for MTP on Blackwell, see the note printed then).",
    )
    kv_transfer_link: Literal["auto", "nvlink", "nic"] = Field(
        default="auto",
        description="Link carrying KV from prefill to decode instances (auto: NVLink when "
        "all instances fit in one scale-up domain).",
    )

    @field_validator("eplb_config", mode="before")
    @classmethod
    def _eplb_json(cls, value: Any) -> Any:
        return parse_eplb_config(value)

    @model_validator(mode="before")
    @classmethod
    def _speculative(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("speculative_config") is not None:
            tokens = speculative_tokens(data["speculative_config"])
            given = data.get("num_speculative_tokens")
            if given not in (None, tokens):
                raise ValueError(
                    f"--num-speculative-tokens {given} contradicts --speculative-config ({tokens} tokens)"
                )
            data = {**data, "num_speculative_tokens": tokens}
        return data

    @model_validator(mode="after")
    def _check_pd(self) -> Deployment:
        if (self.num_prefill_instances == 0) != (self.num_decode_instances == 0):
            raise ValueError(
                "disaggregated serving needs both --num-prefill-instances and "
                "--num-decode-instances >= 1 (or both 0 for aggregated serving)"
            )
        decode_only = [f for f in DECODE_SHAPE_FIELDS if getattr(self, f) is not None]
        if decode_only and not self.disaggregated:
            flags = ", ".join("--" + f.replace("_", "-") for f in decode_only)
            raise ValueError(
                f"{flags} applies to the decode instances of disaggregated serving: add "
                "--num-prefill-instances and --num-decode-instances"
            )
        return self

    def decode_settings(self) -> Deployment:
        """The settings of the decode instances: the prefill instances' with the decode_* fields applied."""
        update: dict[str, Any] = {f: None for f in DECODE_SHAPE_FIELDS}
        for field_name, target in zip(DECODE_SHAPE_FIELDS, DECODE_SHAPE_TARGETS, strict=True):
            if getattr(self, field_name) is not None:
                update[target] = getattr(self, field_name)
        return self.model_copy(update=update)

    @property
    def heterogeneous_pd(self) -> bool:
        """Whether decode instances have another shape than the prefill instances."""
        return any(getattr(self, f) is not None for f in DECODE_SHAPE_FIELDS)

    @property
    def disaggregated(self) -> bool:
        """True when prefill and decode run on separate instances."""
        return self.num_prefill_instances > 0


def resolve_deployment(dep: Deployment, model: Model, hw: HardwareSpec, tp: int) -> ResolvedDeployment:
    """Apply vLLM 0.14.1 defaults for ``model`` on ``hw`` with tensor parallelism ``tp``.

    Raises ``SpecError`` for impossible parallelism (heads or experts not divisible, and so on).
    """
    arch = model.arch
    notes: list[str] = []
    heads = arch.num_attention_heads
    if heads % tp:
        raise SpecError(
            f"tensor parallel size {tp} does not divide the {heads} attention heads; "
            f"allowed: {', '.join(str(d) for d in _divisors(heads))}",
            field="tensor_parallel_size",
        )
    if arch.gqa is not None and tp > arch.gqa.num_kv_heads and tp % arch.gqa.num_kv_heads:
        raise SpecError(
            f"tensor parallel size {tp} is above the {arch.gqa.num_kv_heads} KV heads and not a multiple of "
            "them (vLLM replicates KV heads only by whole multiples)",
            field="tensor_parallel_size",
        )
    dp = dep.data_parallel_size
    moe_group = tp * dp
    placement = resolve_expert_placement(
        model,
        tp,
        dp,
        enable_expert_parallel=dep.enable_expert_parallel,
        enable_eplb=dep.enable_eplb,
        num_redundant_experts=dep.eplb_config.num_redundant_experts,
        all2all_backend=dep.all2all_backend,
    )
    ep, moe_tp = placement.ep, placement.moe_tp
    if dep.enable_dbo and (dp == 1 or dep.all2all_backend not in DEEPEP_BACKENDS):
        raise SpecError(
            "--enable-dbo needs DP > 1 and --all2all-backend deepep_low_latency or deepep_high_throughput "
            "(vLLM's micro-batching runs only with DeepEP)",
            field="enable_dbo",
        )
    if dep.all2all_backend != "allgather_reducescatter" and dp == 1:
        notes.append(
            f"--all2all-backend {dep.all2all_backend} has no effect with DP = 1 (vLLM uses it only with DP > 1)"
        )
    block_fp8 = (
        arch.moe is not None and model.recipe.dtype("routed_experts") == "fp8" and model.precision == "fp8"
    )
    if (
        block_fp8
        and ep == 1
        and arch.moe is not None
        and (arch.moe.intermediate_size // moe_tp) % FP8_WEIGHT_BLOCK
    ):
        raise SpecError(
            f"block-FP8 experts need each rank's slice of the {arch.moe.intermediate_size}-wide expert to be a "
            f"multiple of {FP8_WEIGHT_BLOCK} (vLLM's 128x128 weight blocks); TP x DP = {moe_group} gives "
            f"{arch.moe.intermediate_size / moe_tp:g}: use a smaller TP x DP or --enable-expert-parallel",
            field="tensor_parallel_size",
        )
    if tp * dp > hw.scaleup_domain_gpus:
        notes.append(
            f"TP x DP = {tp * dp} exceeds the {hw.scaleup_domain_gpus}-GPU scale-up domain of "
            f"{hw.name}: collectives cross the NIC"
        )

    if (
        arch.moe is not None
        and model.recipe.dtype("routed_experts") == "mxfp4"
        and mxfp4_moe_backend(hw) == "marlin"
    ):
        notes.append(
            f"MXFP4 experts on {hw.name} are costed as vLLM's Marlin kernels (VLLM_MXFP4_USE_MARLIN=1); "
            "vLLM's default Triton MoE path is not modelled"
        )
    notes += hw.implausible()
    default_tokens, default_seqs = serve_defaults(hw)
    max_model_len = dep.max_model_len or arch.max_position_embeddings
    if max_model_len > arch.max_position_embeddings:
        raise SpecError(
            f"max_model_len {max_model_len} exceeds the model's max_position_embeddings "
            f"{arch.max_position_embeddings}",
            field="max_model_len",
        )
    max_num_seqs = dep.max_num_seqs or default_seqs
    max_tokens = dep.max_num_batched_tokens or min(default_tokens, max_num_seqs * max_model_len)
    if dep.max_num_seqs and dep.max_num_seqs > max_tokens:
        raise SpecError(
            f"max_num_seqs ({dep.max_num_seqs}) must be <= max_num_batched_tokens ({max_tokens}), as vLLM "
            "requires",
            field="max_num_seqs",
        )
    if max_num_seqs > max_tokens:  # only when --max-num-seqs was not given [arg_utils.py:2023-2025]
        notes.append(f"max_num_seqs lowered to max_num_batched_tokens = {max_tokens}, as vLLM 0.14.1 does")
    max_num_seqs = min(max_num_seqs, max_tokens)

    k = dep.num_speculative_tokens
    if k and arch.num_mtp_layers == 0:
        raise SpecError(
            f"{model.name} has no MTP layer (num_nextn_predict_layers = 0); "
            "speculative decoding with MTP is not possible",
            field="num_speculative_tokens",
        )
    kv = resolve_kv_cache_dtype(dep.kv_cache_dtype, model)
    backend, backend_note = select_backend(model, hw, kv, dep.attention_backend, k)
    block, block_note = resolve_block_size(backend, dep.block_size, dep.attention_backend == "auto", hw)
    graph_mode, graph_note = cudagraph_mode(backend, k, model.has_sparse_attention, dep.enforce_eager)
    if dep.all2all_backend == "deepep_high_throughput" and dp > 1 and graph_mode != "NONE":
        # HT dispatch waits on the host for the receive counts [config/compilation.py:969-985]
        graph_mode = "NONE"
        notes.append("deepep_high_throughput with DP > 1: vLLM runs without CUDA graphs (eager launches)")
    notes += [n for n in (backend_note, block_note, graph_note) if n]
    capture = dep.max_cudagraph_capture_size or default_max_capture_size(
        max_num_seqs, k, max_tokens, cap=GPT_OSS_CAPTURE_CAP if arch.model_type == "gpt_oss" else None
    )
    mxfp4_compute = "fp8" if dep.mxfp4_moe_activation == "mxfp8" and hw.is_blackwell else "bf16"

    if not hw.supports("nvfp4") and model.precision == "fp4":
        notes.append(
            f"{hw.name} has no FP4 tensor cores: NVFP4 layers run weight-only (Marlin W4A16) at the BF16 rate"
        )
    link = dep.kv_transfer_link
    if link == "auto":
        decode_gpus = (dep.decode_tensor_parallel_size or tp) * (dep.decode_data_parallel_size or dp)
        pd_gpus = tp * dp * dep.num_prefill_instances + decode_gpus * dep.num_decode_instances
        link = "nvlink" if pd_gpus <= hw.scaleup_domain_gpus else "nic"
    return ResolvedDeployment(
        tp=tp,
        dp=dp,
        ep=ep,
        moe_tp=moe_tp,
        num_prefill_instances=dep.num_prefill_instances,
        num_decode_instances=dep.num_decode_instances,
        num_instances=1 if dep.disaggregated else dep.num_instances,
        num_speculative_tokens=k,
        mtp_acceptance_rate=dep.mtp_acceptance_rate,
        max_num_batched_tokens=max_tokens,
        max_num_seqs=max_num_seqs,
        gpu_memory_utilization=dep.gpu_memory_utilization,
        kv_cache_dtype=kv,
        block_size=block,
        max_model_len=max_model_len,
        async_scheduling=dep.async_scheduling,
        cudagraph_mode=graph_mode,
        max_cudagraph_capture_size=capture,
        attention_backend=backend,
        mxfp4_compute=mxfp4_compute,
        all2all_backend=placement.all2all_backend,
        physical_experts=placement.physical_experts,
        eplb=placement.eplb,
        enable_dbo=dep.enable_dbo,
        dbo_thresholds=(dep.dbo_decode_token_threshold, dep.dbo_prefill_token_threshold),
        kv_transfer_link=link,
        notes=tuple(notes),
    )


#: FP8 block-quantized checkpoints scale 128 x 128 weight blocks [layers/quantization/fp8.py]
FP8_WEIGHT_BLOCK = 128


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
