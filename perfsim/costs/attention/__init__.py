"""Attention families, one module each: dense MLA (``mla``), DeepSeek Sparse Attention (``dsa``) and grouped-query
attention (``gqa``)."""

from perfsim.costs.attention import dsa, gqa, mla
from perfsim.costs.attention.registry import ATTENTION_FAMILIES, AttentionFamily, register_attention
from perfsim.costs.kernels import CostContext


def attention_family(ctx: CostContext) -> AttentionFamily:
    """The registered attention family of the context's model."""
    kind = ctx.model.arch.attention_kind
    if kind not in ATTENTION_FAMILIES:
        raise KeyError(
            f"no attention family registered for '{kind}'; known: {', '.join(sorted(ATTENTION_FAMILIES))}"
        )
    return ATTENTION_FAMILIES[kind](ctx)


__all__ = [
    "ATTENTION_FAMILIES",
    "AttentionFamily",
    "attention_family",
    "dsa",
    "gqa",
    "mla",
    "register_attention",
]
