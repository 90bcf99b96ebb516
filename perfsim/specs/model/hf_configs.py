"""Hugging Face ``config.json`` readers by ``model_type``: DeepSeek-family (MLA) and GQA families.

Each reader validates the fields perfsim needs and builds a ``ModelArchitecture``. ``load_architecture``
dispatches on ``model_type``; any other type gets one line naming it and the supported ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from perfsim.errors import SpecError
from perfsim.specs.loading import load_json_file, validation_error_to_spec_error
from perfsim.specs.model.architecture import GQADims, ModelArchitecture, MoEDims, deepseek_architecture
from perfsim.specs.model.config import SUPPORTED_MODEL_TYPES as DEEPSEEK_MODEL_TYPES


class _GQAConfig(BaseModel):
    """Fields every GQA decoder config shares."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model_type: str
    hidden_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    head_dim: int | None = Field(default=None, gt=0)
    vocab_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    max_position_embeddings: int = Field(gt=0)
    tie_word_embeddings: bool = False
    attention_bias: bool = False

    def gqa(self, **extra) -> GQADims:
        """The attention dimensions (head_dim defaults to hidden / heads)."""
        return GQADims(
            num_heads=self.num_attention_heads,
            num_kv_heads=self.num_key_value_heads,
            head_dim=self.head_dim or self.hidden_size // self.num_attention_heads,
            qkv_bias=self.attention_bias,
            **extra,
        )

    def architecture(
        self, *, moe: MoEDims | None, kinds: tuple[str, ...], gqa: GQADims, windows=()
    ) -> ModelArchitecture:
        """The architecture with these layer kinds."""
        return ModelArchitecture(
            model_type=self.model_type,
            hidden_size=self.hidden_size,
            num_layers=self.num_hidden_layers,
            num_dense_layers=kinds.count("dense"),
            num_moe_layers=kinds.count("moe"),
            dense_intermediate_size=self.intermediate_size,
            vocab_size=self.vocab_size,
            max_position_embeddings=self.max_position_embeddings,
            tie_word_embeddings=self.tie_word_embeddings,
            mla=None,
            indexer=None,
            moe=moe,
            num_mtp_layers=0,
            layer_kinds=kinds,
            gqa=gqa,
            layer_windows=tuple(windows),
        )


def softmax_moe(num_experts: int, top_k: int, intermediate: int, **extra) -> MoEDims:
    """A plain top-k softmax MoE without shared experts or expert groups (Mixtral, Qwen3, gpt-oss)."""
    return MoEDims(
        num_experts=num_experts,
        num_shared_experts=0,
        top_k=top_k,
        intermediate_size=intermediate,
        n_group=None,
        topk_group=None,
        scoring_func="softmax",
        **extra,
    )


class HFLlamaConfig(_GQAConfig):
    """``llama``: dense GQA decoder (Llama 3.x)."""

    def build(self) -> ModelArchitecture:
        return self.architecture(moe=None, kinds=("dense",) * self.num_hidden_layers, gqa=self.gqa())


class HFMixtralConfig(_GQAConfig):
    """``mixtral``: GQA with a top-k softmax MoE in every layer (experts of ``intermediate_size``)."""

    num_local_experts: int = Field(gt=0)
    num_experts_per_tok: int = Field(gt=0)

    def build(self) -> ModelArchitecture:
        moe = softmax_moe(self.num_local_experts, self.num_experts_per_tok, self.intermediate_size)
        return self.architecture(moe=moe, kinds=("moe",) * self.num_hidden_layers, gqa=self.gqa())


class HFQwen3MoeConfig(_GQAConfig):
    """``qwen3_moe``: GQA with q/k RMSNorm; MoE layers every ``decoder_sparse_step`` outside ``mlp_only_layers``."""

    num_experts: int = Field(gt=0)
    num_experts_per_tok: int = Field(gt=0)
    moe_intermediate_size: int = Field(gt=0)
    decoder_sparse_step: int = Field(default=1, gt=0)
    mlp_only_layers: list[int] = Field(default_factory=list)

    def build(self) -> ModelArchitecture:
        kinds = tuple(
            "moe" if i not in self.mlp_only_layers and (i + 1) % self.decoder_sparse_step == 0 else "dense"
            for i in range(self.num_hidden_layers)
        )
        moe = softmax_moe(self.num_experts, self.num_experts_per_tok, self.moe_intermediate_size)
        return self.architecture(moe=moe, kinds=kinds, gqa=self.gqa(qk_norm=True))


class HFGptOssConfig(_GQAConfig):
    """``gpt_oss``: GQA with attention sinks, biases, sliding-window layers; MoE with biased experts and router."""

    num_local_experts: int = Field(gt=0)
    num_experts_per_tok: int = Field(gt=0)
    sliding_window: int = Field(gt=0)
    layer_types: list[str] | None = None

    def build(self) -> ModelArchitecture:
        types = self.layer_types or [
            "sliding_attention" if i % 2 == 0 else "full_attention" for i in range(self.num_hidden_layers)
        ]
        if len(types) != self.num_hidden_layers:
            raise ValueError(f"layer_types has {len(types)} entries for {self.num_hidden_layers} layers")
        windows = [self.sliding_window if t == "sliding_attention" else None for t in types]
        moe = softmax_moe(
            self.num_local_experts,
            self.num_experts_per_tok,
            self.intermediate_size,
            expert_bias=True,
            router_bias=True,
        )
        gqa = self.gqa(o_bias=self.attention_bias, sinks=True, sliding_window=self.sliding_window)
        return self.architecture(moe=moe, kinds=("moe",) * self.num_hidden_layers, gqa=gqa, windows=windows)


GQA_CONFIGS: dict[str, type[_GQAConfig]] = {
    "llama": HFLlamaConfig,
    "mixtral": HFMixtralConfig,
    "qwen3_moe": HFQwen3MoeConfig,
    "gpt_oss": HFGptOssConfig,
}
SUPPORTED_MODEL_TYPES = (*DEEPSEEK_MODEL_TYPES, *GQA_CONFIGS)


def _gqa_architecture(cls: type[_GQAConfig]) -> Callable[[dict, Path], ModelArchitecture]:
    def read(raw: dict, path: Path) -> ModelArchitecture:
        try:
            return cls.model_validate(raw).build()  # type: ignore[attr-defined]
        except SpecError:
            raise
        except Exception as exc:
            raise validation_error_to_spec_error(exc, path) from None

    return read


READERS: dict[str, Callable[[dict, Path], ModelArchitecture]] = {
    **{t: deepseek_architecture for t in DEEPSEEK_MODEL_TYPES},
    **{t: _gqa_architecture(c) for t, c in GQA_CONFIGS.items()},
}


def load_architecture(config_path: Path) -> ModelArchitecture:
    """Parse and validate a Hugging Face ``config.json`` of a supported ``model_type``."""
    raw = load_json_file(config_path)
    model_type = raw.get("model_type") if isinstance(raw, dict) else None
    if model_type not in READERS:
        raise SpecError(
            f"model_type {model_type!r} is not supported; supported: {', '.join(SUPPORTED_MODEL_TYPES)}",
            source=str(config_path),
            field="model_type",
        )
    return READERS[str(model_type)](raw, config_path)
