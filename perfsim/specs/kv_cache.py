"""KV-cache entries as vLLM stores them: the resolved dtype and the bytes per token and layer on one GPU.

MLA caches one latent per token (not split by TP; ``fp8_ds_mla`` adds scales for V3.2, whose indexer keeps its own
FP8 keys); GQA caches keys and values of the rank's KV heads, replicated when TP exceeds them.
"""

from __future__ import annotations

from perfsim.errors import SpecError
from perfsim.specs.dtypes import FP32_BYTES
from perfsim.specs.model import IndexerDims, Model

#: KV bytes per token and layer of V3.2's FP8 cache layout (other layouts: latent_dim values of 1 or 2 bytes)
FP8_DS_MLA_BYTES = 656  # 512 fp8 NoPE + 4 fp32 scales + 64 bf16 RoPE [flashmla_sparse.py:58-70]
#: the V3.2 indexer's FP8 key carries one fp32 scale per this many values [indexer.py, fp8 quant block]
INDEXER_SCALE_BLOCK = 128


def resolve_kv_cache_dtype(requested: str, model: Model) -> str:
    """vLLM 0.14.1's KV dtype resolution.

    ``auto`` takes the checkpoint's ``kv_cache_quant_algo`` (ModelOpt FP8 -> fp8_e4m3) or the model dtype
    (bf16); DeepSeek-V3.2 maps any fp8 request to ``fp8_ds_mla`` [model_executor/models/config.py:508-527].
    """
    if requested == "auto":
        resolved = "fp8_e4m3" if model.recipe.kv_cache_quant == "fp8" else "bfloat16"
    elif requested == "fp8":
        resolved = "fp8_e4m3"
    else:
        resolved = requested
    if model.has_sparse_attention and resolved.startswith("fp8"):
        return "fp8_ds_mla"
    if resolved == "fp8_ds_mla" and not model.has_sparse_attention:
        raise SpecError(
            "kv_cache_dtype fp8_ds_mla exists only for sparse-attention models (DeepSeek-V3.2); "
            "use fp8 or bfloat16",
            field="kv_cache_dtype",
        )
    return resolved


def mla_entry_bytes(model: Model, kv_cache_dtype: str) -> int:
    """Bytes of one token's MLA latent (compressed KV + RoPE key) in the cache of one layer on one GPU."""
    if kv_cache_dtype == "fp8_ds_mla":
        return FP8_DS_MLA_BYTES
    assert model.arch.mla is not None
    return model.arch.mla.latent_dim * (1 if kv_cache_dtype.startswith("fp8") else 2)


def kv_heads_per_rank(model: Model, tp: int) -> int:
    """KV heads one TP rank caches: its share, or one replicated head when TP exceeds the KV heads."""
    assert model.arch.gqa is not None
    return max(1, model.arch.gqa.num_kv_heads // tp)


def indexer_key_bytes(ix: IndexerDims) -> int:
    """Bytes of one token's V3.2 indexer key: FP8 values plus an fp32 scale per block (128 + 4 = 132 B)."""
    return ix.head_dim + FP32_BYTES * max(1, ix.head_dim // INDEXER_SCALE_BLOCK)


def kv_bytes_per_token_layer(model: Model, kv_cache_dtype: str, tp: int = 1) -> int:
    """KV cache bytes per token and attention layer on one GPU: GQA keys and values of the rank's KV heads; the
    MLA latent (not split by TP) with the V3.2 indexer's key cache."""
    if model.arch.gqa is not None:
        return (
            2
            * kv_heads_per_rank(model, tp)
            * model.arch.gqa.head_dim
            * (1 if kv_cache_dtype.startswith("fp8") else 2)
        )
    indexer = indexer_key_bytes(model.arch.indexer) if model.arch.indexer is not None else 0
    return mla_entry_bytes(model, kv_cache_dtype) + indexer
