"""A model's layers and dimensions and its parameter counts per module class.

Attention is MLA (DeepSeek, Kimi-K2; with the DSA indexer for V3.2) or GQA/MHA (Qwen3, gpt-oss, Llama,
Mixtral: ``GQADims``, with per-layer sliding windows and attention sinks); feed-forward layers are dense gated
MLPs or MoE blocks. The per-family ``config.json`` readers live in ``perfsim.specs.model.hf_configs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from perfsim.specs.loading import validation_error_to_spec_error
from perfsim.specs.model.config import HFDeepseekConfig

#: DeepSeek-family model types whose router adds ``e_score_correction_bias`` (noaux_tc routing)
NOAUX_TC_MODEL_TYPES = ("deepseek_v3", "deepseek_v32", "kimi_k2")


@dataclass(frozen=True)
class MLADims:
    """Multi-head latent attention dimensions (per model, before tensor parallelism)."""

    num_heads: int
    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int

    @property
    def qk_head_dim(self) -> int:
        """Query/key head size in the expanded (MHA) form: nope + rope (192)."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def latent_dim(self) -> int:
        """Width of the cached latent per token: kv_lora_rank + rope (576)."""
        return self.kv_lora_rank + self.qk_rope_head_dim


@dataclass(frozen=True)
class IndexerDims:
    """DeepSeek Sparse Attention lightning-indexer dimensions."""

    num_heads: int
    head_dim: int
    topk: int


@dataclass(frozen=True)
class GQADims:
    """Grouped-query (or multi-head) attention dimensions, before tensor parallelism.

    ``sliding_window``: the window of the layers that use one (their kinds in ``layer_windows`` of the
    architecture); ``sinks``: one learned sink logit per head (gpt-oss); ``qk_norm``: RMSNorm of q and k per head
    (Qwen3).
    """

    num_heads: int
    num_kv_heads: int
    head_dim: int
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    sinks: bool = False
    sliding_window: int | None = None


@dataclass(frozen=True)
class MoEDims:
    """Routed / shared expert layout of the MoE layers.

    ``expert_bias``: the experts' projections have biases (gpt-oss); ``router_bias``: a bias per expert on the
    router logits (DeepSeek's ``e_score_correction_bias``, gpt-oss's router bias).
    """

    num_experts: int
    num_shared_experts: int
    top_k: int
    intermediate_size: int
    n_group: int | None
    topk_group: int | None
    scoring_func: str
    expert_bias: bool = False
    router_bias: bool = False


@dataclass(frozen=True)
class ModelArchitecture:
    """Everything perfsim needs to know about a model's layers, derived from its config.json."""

    model_type: str
    hidden_size: int
    num_layers: int
    num_dense_layers: int
    num_moe_layers: int
    dense_intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    mla: MLADims | None
    indexer: IndexerDims | None
    moe: MoEDims | None
    num_mtp_layers: int
    layer_kinds: tuple[str, ...]  # 'dense' or 'moe' per decoder layer
    gqa: GQADims | None = None
    #: the attention window of each decoder layer (None: full attention)
    layer_windows: tuple[int | None, ...] = ()

    @property
    def attention_kind(self) -> str:
        """The attention family of the layers: 'dsa' (DeepSeek Sparse Attention), 'mla' or 'gqa'."""
        if self.gqa is not None:
            return "gqa"
        return "dsa" if self.indexer is not None else "mla"

    @property
    def num_attention_heads(self) -> int:
        """Query heads of the attention layers (what tensor parallelism splits)."""
        if self.gqa is not None:
            return self.gqa.num_heads
        assert self.mla is not None
        return self.mla.num_heads

    @property
    def window_of_layer(self) -> tuple[int | None, ...]:
        """Each decoder layer's attention window (None: full), one per layer."""
        return self.layer_windows or (None,) * self.num_layers

    @property
    def num_sliding_layers(self) -> int:
        """Decoder layers with a sliding attention window."""
        return sum(w is not None for w in self.window_of_layer)

    @classmethod
    def from_hf_config(cls, cfg: HFDeepseekConfig) -> ModelArchitecture:
        """Build the architecture from a validated config."""
        kinds = tuple(
            "moe" if (i >= cfg.first_k_dense_replace and i % cfg.moe_layer_freq == 0) else "dense"
            for i in range(cfg.num_hidden_layers)
        )
        indexer = None
        if cfg.index_n_heads:
            indexer = IndexerDims(
                num_heads=cfg.index_n_heads, head_dim=cfg.index_head_dim or 0, topk=cfg.index_topk or 0
            )
        return cls(
            model_type=cfg.model_type,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_hidden_layers,
            num_dense_layers=kinds.count("dense"),
            num_moe_layers=kinds.count("moe"),
            dense_intermediate_size=cfg.intermediate_size,
            vocab_size=cfg.vocab_size,
            max_position_embeddings=cfg.max_position_embeddings,
            tie_word_embeddings=cfg.tie_word_embeddings,
            mla=MLADims(
                num_heads=cfg.num_attention_heads,
                q_lora_rank=cfg.q_lora_rank,
                kv_lora_rank=cfg.kv_lora_rank,
                qk_nope_head_dim=cfg.qk_nope_head_dim,
                qk_rope_head_dim=cfg.qk_rope_head_dim,
                v_head_dim=cfg.v_head_dim,
            ),
            indexer=indexer,
            moe=MoEDims(
                num_experts=cfg.n_routed_experts,
                num_shared_experts=cfg.n_shared_experts,
                top_k=cfg.num_experts_per_tok,
                intermediate_size=cfg.moe_intermediate_size,
                n_group=cfg.n_group,
                topk_group=cfg.topk_group,
                scoring_func=cfg.scoring_func,
                router_bias=cfg.model_type in NOAUX_TC_MODEL_TYPES,
            ),
            num_mtp_layers=cfg.num_nextn_predict_layers,
            layer_kinds=kinds,
        )

    # ---- parameter counts per module (whole model, before sharding) -----------------------------
    def attention_params(self) -> dict[str, int]:
        """Attention projection parameters of one layer, by module class (norms under 'attn_norms', biases and
        sinks with their projection)."""
        h = self.hidden_size
        if self.gqa is not None:
            g = self.gqa
            q, kv = g.num_heads * g.head_dim, g.num_kv_heads * g.head_dim
            return {
                "qkv": h * (q + 2 * kv) + (q + 2 * kv if g.qkv_bias else 0),
                "o_proj": q * h + (h if g.o_bias else 0) + (g.num_heads if g.sinks else 0),
                "attn_norms": 2 * g.head_dim if g.qk_norm else 0,
            }
        m = self.mla
        assert m is not None
        q_in = m.q_lora_rank or h
        out = {
            "q_a": h * m.q_lora_rank if m.q_lora_rank else 0,
            "kv_a": h * m.latent_dim,
            "q_b": q_in * m.num_heads * m.qk_head_dim,
            "kv_b": m.kv_lora_rank * m.num_heads * (m.qk_nope_head_dim + m.v_head_dim),
            "o_proj": m.num_heads * m.v_head_dim * h,
            "attn_norms": (m.q_lora_rank or 0) + m.kv_lora_rank,
        }
        return out

    def indexer_params(self) -> dict[str, int]:
        """Lightning-indexer parameters of one layer (0 for models without DSA)."""
        if self.indexer is None:
            return {"indexer": 0, "indexer_weights_proj": 0}
        h, ix = self.hidden_size, self.indexer
        q_in = (self.mla.q_lora_rank if self.mla else None) or h
        wq_b = q_in * ix.num_heads * ix.head_dim
        wk = h * ix.head_dim
        k_norm = 2 * ix.head_dim  # LayerNorm weight + bias
        return {"indexer": wq_b + wk + k_norm, "indexer_weights_proj": h * ix.num_heads}

    @property
    def expert_params(self) -> int:
        """One routed or shared expert (gate, up, down projections, with their biases where the model has them)."""
        moe = self.moe
        if moe is None:
            return 0
        h, i = self.hidden_size, moe.intermediate_size
        return 3 * h * i + (2 * i + h if moe.expert_bias else 0)

    @property
    def dense_mlp_params(self) -> int:
        """One dense MLP (gate, up, down)."""
        return 3 * self.hidden_size * self.dense_intermediate_size

    @property
    def router_params(self) -> int:
        """Router weight plus its per-expert bias where the model has one."""
        moe = self.moe
        if moe is None:
            return 0
        return moe.num_experts * self.hidden_size + (moe.num_experts if moe.router_bias else 0)

    @property
    def embedding_params(self) -> int:
        """Input embedding table."""
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """Output head (0 extra when tied to the embedding)."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    def decoder_layer_params(self, kind: str, *, active: bool) -> int:
        """Parameters of one decoder layer; ``active`` counts only top-k routed experts."""
        attn = sum(self.attention_params().values()) + sum(self.indexer_params().values())
        norms = 2 * self.hidden_size
        if kind == "dense":
            return attn + norms + self.dense_mlp_params
        assert self.moe is not None
        experts = self.moe.top_k if active else self.moe.num_experts
        return (
            attn + norms + self.router_params + (experts + self.moe.num_shared_experts) * self.expert_params
        )

    @property
    def mtp_layer_params(self) -> int:
        """One MTP module: a MoE decoder layer + enorm, hnorm, eh_proj (2h -> h), shared_head.norm (0 without)."""
        if not self.num_mtp_layers or self.moe is None:
            return 0
        h = self.hidden_size
        return self.decoder_layer_params("moe", active=False) + 3 * h + 2 * h * h

    @property
    def total_params(self) -> int:
        """Every stored weight of the main model (embedding and lm_head included, MTP excluded)."""
        layers = sum(self.decoder_layer_params(k, active=False) for k in self.layer_kinds)
        return layers + self.embedding_params + self.lm_head_params + self.hidden_size

    @property
    def active_params(self) -> int:
        """Weights a token multiplies: attention, MLPs, shared + top-k experts, router, norms, lm_head.

        The embedding is a row lookup, not a matrix product, and is left out (see
        ``active_params_with_embedding``).
        """
        layers = sum(self.decoder_layer_params(k, active=True) for k in self.layer_kinds)
        head = self.lm_head_params or self.embedding_params
        return layers + head + self.hidden_size

    @property
    def active_params_with_embedding(self) -> int:
        """``active_params`` plus the whole embedding table (the most generous convention)."""
        return self.active_params + (self.embedding_params if self.lm_head_params else 0)


def deepseek_architecture(raw: dict, config_path: Path) -> ModelArchitecture:
    """The architecture of a DeepSeek-family ``config.json`` (DeepSeek V2/V3/V3.2, Kimi-K2)."""
    try:
        cfg = HFDeepseekConfig.model_validate(raw)
    except Exception as exc:
        raise validation_error_to_spec_error(exc, config_path) from None
    return ModelArchitecture.from_hf_config(cfg)
