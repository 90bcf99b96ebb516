"""A deployment with every vLLM default applied: what the cost model and the simulator read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResolvedDeployment:
    """A deployment with every vLLM default applied for a model on a GPU kind (all values concrete)."""

    tp: int
    dp: int
    ep: int  # expert-parallel group size (1 = experts split by tensor parallelism)
    moe_tp: int  # tensor-parallel split of each expert's intermediate dimension
    num_prefill_instances: int
    num_decode_instances: int
    num_instances: int
    num_speculative_tokens: int
    mtp_acceptance_rate: float | None
    max_num_batched_tokens: int
    max_num_seqs: int
    gpu_memory_utilization: float
    kv_cache_dtype: str  # 'bfloat16', 'fp8_e4m3' or 'fp8_ds_mla'
    block_size: int
    max_model_len: int
    async_scheduling: bool
    cudagraph_mode: str  # 'FULL_AND_PIECEWISE', 'PIECEWISE' or 'NONE'
    max_cudagraph_capture_size: int
    attention_backend: str
    kv_transfer_link: str
    notes: tuple[str, ...] = field(default=())
    #: tensor-core precision of MXFP4 expert GEMMs: 'fp8' (MXFP8 activations) or 'bf16'
    mxfp4_compute: str = "bf16"
    #: vLLM --all2all-backend (it moves tokens only with EP and DP > 1)
    all2all_backend: str = "allgather_reducescatter"
    #: routed experts plus EPLB's redundant replicas
    physical_experts: int = 0
    eplb: bool = False
    #: dual-batch overlap and its (decode-only, with-prefill) token thresholds per rank
    enable_dbo: bool = False
    dbo_thresholds: tuple[int, int] = (32, 512)
    #: the decode instances of disaggregated serving when their shape differs (None: the same as this one)
    decode: ResolvedDeployment | None = None

    @property
    def decode_instance(self) -> ResolvedDeployment:
        """The resolved deployment of one decode instance (this one unless P/D shapes differ)."""
        return self.decode or self

    @property
    def gpus_per_instance(self) -> int:
        """GPUs of one engine instance (TP x DP)."""
        return self.tp * self.dp

    @property
    def disaggregated(self) -> bool:
        """True for prefill/decode disaggregation."""
        return self.num_prefill_instances > 0

    @property
    def num_gpus(self) -> int:
        """Every GPU of the deployment: TP x DP per instance, over all instances."""
        if self.disaggregated:
            decode_gpus = self.decode_instance.gpus_per_instance * self.num_decode_instances
            return self.gpus_per_instance * self.num_prefill_instances + decode_gpus
        return self.gpus_per_instance * self.num_instances

    @property
    def kv_fp8(self) -> bool:
        """Whether the KV cache is stored in FP8."""
        return self.kv_cache_dtype.startswith("fp8")

    def expert_slice(self, intermediate_size: int) -> int:
        """Width of each routed expert's intermediate dimension on one GPU: whole experts with expert
        parallelism, a 1/moe_tp slice without."""
        return intermediate_size if self.ep > 1 else intermediate_size // self.moe_tp
