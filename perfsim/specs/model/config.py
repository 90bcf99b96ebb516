"""The fields of a DeepSeek-family Hugging Face ``config.json`` that perfsim reads, validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

SUPPORTED_MODEL_TYPES = ("deepseek_v2", "deepseek_v3", "deepseek_v32", "kimi_k2")


class HFDeepseekConfig(BaseModel):
    """The fields of a DeepSeek-family Hugging Face ``config.json`` that perfsim uses."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model_type: str
    hidden_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    moe_intermediate_size: int = Field(gt=0)
    n_routed_experts: int = Field(gt=0)
    n_shared_experts: int = Field(ge=0)
    num_experts_per_tok: int = Field(gt=0)
    first_k_dense_replace: int = Field(ge=0)
    moe_layer_freq: int = Field(default=1, gt=0)
    q_lora_rank: int | None = Field(default=None, gt=0)
    kv_lora_rank: int = Field(gt=0)
    qk_nope_head_dim: int = Field(gt=0)
    qk_rope_head_dim: int = Field(gt=0)
    v_head_dim: int = Field(gt=0)
    max_position_embeddings: int = Field(gt=0)
    num_nextn_predict_layers: int = Field(default=0, ge=0)
    tie_word_embeddings: bool = False
    n_group: int | None = None
    topk_group: int | None = None
    scoring_func: str = "softmax"
    topk_method: str = "greedy"
    index_n_heads: int | None = Field(default=None, gt=0)
    index_head_dim: int | None = Field(default=None, gt=0)
    index_topk: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> HFDeepseekConfig:
        if self.model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"model_type '{self.model_type}' is not supported yet; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        if self.num_experts_per_tok > self.n_routed_experts:
            raise ValueError("num_experts_per_tok exceeds n_routed_experts")
        if self.first_k_dense_replace > self.num_hidden_layers:
            raise ValueError("first_k_dense_replace exceeds num_hidden_layers")
        if self.model_type == "deepseek_v32" and not (
            self.index_n_heads and self.index_head_dim and self.index_topk
        ):
            raise ValueError("deepseek_v32 needs index_n_heads, index_head_dim and index_topk")
        return self
