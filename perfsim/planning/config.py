"""What ``perfsim plan`` searches, for which workload and which service level objectives (SLOs)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from perfsim.serving.workload import MAX_PROMPTS, MAX_TOKENS, BenchConfig

#: the all-to-all backends perfsim models (vLLM 0.14.1's others are refused by the deployment spec)
PlannedAll2All = Literal["allgather_reducescatter", "deepep_high_throughput", "deepep_low_latency"]
Choice = Literal["both", "on", "off"]
Count = Annotated[int, Field(ge=1, le=4096)]
Positive = Annotated[float, Field(gt=0)]


class PlanConfig(BaseModel):
    """The search space, the workload (``vllm bench serve`` flags, lists where a plan compares values) and SLOs.

    A list field left out means perfsim's default space for it; flags keep vLLM's names and take several values
    (``-tp 2 4 8``).
    """

    model_config = ConfigDict(extra="forbid")

    max_gpus: int = Field(
        default=8, ge=1, le=4096, description="Largest deployment, in GPUs (every instance)."
    )
    gpus: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="Only deployments of exactly this many GPUs (else 1 to --max-gpus).",
    )
    tensor_parallel_size: list[Count] | None = Field(
        default=None,
        json_schema_extra={"cli": ["-tp", "--tensor-parallel-size"]},
        description="TP sizes to consider (default: powers of two that divide the attention heads).",
    )
    data_parallel_size: list[Count] | None = Field(
        default=None,
        json_schema_extra={"cli": ["-dp", "--data-parallel-size"]},
        description="DP sizes per instance to consider (default: powers of two).",
    )
    expert_parallel: Choice = Field(
        default="both",
        description="Expert parallelism (--enable-expert-parallel) on, off or both, for MoE models.",
    )
    all2all_backend: list[PlannedAll2All] | None = Field(
        default=None,
        description="All-to-all backends for EP with DP > 1 (default: the three perfsim models).",
    )
    enable_dbo: Choice = Field(default="both", description="Dual-batch overlap with the DeepEP backends.")
    enable_eplb: Choice = Field(
        default="off",
        description="EPLB with one redundant expert per EP rank, for EP >= 8 (on, off or both).",
    )
    disaggregated: Choice = Field(
        default="both", description="Prefill/decode disaggregation (same shape for both instance kinds)."
    )
    replicas: Choice = Field(
        default="off",
        description="Also consider several replicas of an instance behind a router. Off by default: per GPU and "
        "per user, n replicas at concurrency n x C perform like one at C, so they add cost, not information.",
    )
    pd_ratios: list[str] = Field(
        default=["1:1", "1:2", "2:1", "1:3"], description="Prefill:decode instance ratios for disaggregation."
    )
    decode_data_parallel_size: list[Count] | None = Field(
        default=None,
        description="For P/D, decode-instance DP sizes to consider besides the prefill shape (e.g. 8 16 for "
        "wide-EP decode; TP stays the prefill instances', DeepEP low latency between decode ranks with EP).",
    )
    max_num_batched_tokens: list[Annotated[int, Field(ge=1, le=MAX_TOKENS)]] | None = Field(
        default=None, description="Token budgets per step to consider (default: vLLM's)."
    )
    max_num_seqs: list[Annotated[int, Field(ge=1, le=MAX_PROMPTS)]] | None = Field(
        default=None, description="Batch caps to consider (default: vLLM's)."
    )
    num_speculative_tokens: list[Annotated[int, Field(ge=0, le=8)]] | None = Field(
        default=None,
        description="MTP draft tokens to consider, 0 = off (default: 0 and 1 for models with MTP).",
    )
    random_input_len: int = Field(default=1024, ge=1, le=MAX_TOKENS, description="Prompt length in tokens.")
    random_output_len: int = Field(default=128, ge=1, le=MAX_TOKENS, description="Output tokens per request.")
    random_range_ratio: float = Field(default=0.0, ge=0.0, lt=1.0, description="Lengths within +-ratio.")
    num_prompts: int = Field(
        default=300, ge=1, le=MAX_PROMPTS, description="Requests per simulated benchmark."
    )
    seed: int = Field(default=0, ge=0, lt=2**32, description="Random seed of lengths and arrivals.")
    max_concurrency: list[Annotated[int, Field(ge=1, le=MAX_PROMPTS)]] = Field(
        default=[16, 64, 256],
        description="Concurrencies to benchmark each deployment at (the frontier's points).",
    )
    request_rate: list[Positive] | None = Field(
        default=None,
        description="Request rates (req/s, Poisson arrivals) to benchmark each deployment at instead of "
        "concurrencies; with --max-concurrency given as well, every rate runs under every cap.",
    )
    goodput: list[list[str]] | None = Field(
        default=None,
        json_schema_extra={"metavar": "KEY:MS"},
        description="SLOs as vllm bench serve's --goodput pairs (ttft:MS tpot:MS e2el:MS); give the flag again "
        "for another SLO set, each gets its own recommendation.",
    )
    slo_attainment: float = Field(
        default=0.9,
        gt=0.0,
        le=1.0,
        description="A deployment meets an SLO set when this share of requests does.",
    )

    @field_validator("pd_ratios")
    @classmethod
    def _ratios(cls, ratios: list[str]) -> list[str]:
        for ratio in ratios:
            p, sep, d = ratio.partition(":")
            if not (sep and p.isdigit() and d.isdigit() and int(p) >= 1 and int(d) >= 1):
                raise ValueError(f"'{ratio}': expected PREFILL:DECODE instance counts such as 1:2")
        return ratios

    @field_validator("goodput")
    @classmethod
    def _slos(cls, sets: list[list[str]] | None) -> list[list[str]] | None:
        for pairs in sets or []:
            BenchConfig(goodput=pairs).goodput_slos_ms()  # vLLM's parsing, vLLM's errors
        return sets

    def loads(self) -> list[dict[str, float | int | None]]:
        """The benchmark loads: {'max_concurrency': C} per concurrency, or {'request_rate': R, ...} per rate."""
        if not self.request_rate:
            return [{"max_concurrency": c} for c in self.max_concurrency]
        caps: list[int | None] = (
            list(self.max_concurrency) if "max_concurrency" in self.model_fields_set else [None]
        )
        return [{"request_rate": r, "max_concurrency": c} for r in self.request_rate for c in caps]

    def slo_sets_ms(self) -> list[dict[str, float]]:
        """Each --goodput set as {metric: ms}."""
        return [BenchConfig(goodput=pairs).goodput_slos_ms() or {} for pairs in self.goodput or []]
