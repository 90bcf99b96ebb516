"""The interface of an attention family and the registry that picks one for a model.

An attention family costs the attention block of a decoder layer: the projections and cache writes that
depend only on the step's token count (cached by shape) and the context-dependent core (the attention
kernels, and for sparse attention the indexer). A new attention type is one module with a class that
satisfies ``AttentionFamily``, registered with ``@register_attention("kind")`` under the
``ModelArchitecture.attention_kind`` it serves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from perfsim.costs.batch import BatchStats
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime


class AttentionFamily(Protocol):
    """Cost of one model's attention blocks on one deployment.

    Each operator says how many kernels it launches and where (``OpTime.kernels``, ``OpTime.launch``).
    ``static_uses_unpadded_tokens``: the count-only part depends on the real, not the graph-padded, tokens;
    ``eager_drafter``: an MTP drafter with this attention runs outside CUDA graphs;
    ``sparse_topk``: the key cap of sparse attention (None: dense);
    ``context_breakpoints``: contexts at which the per-token work changes slope (decode blocks split there);
    ``prefill_syncs_host``: a step with a prefill chunk waits for a host copy of attention metadata.
    """

    static_uses_unpadded_tokens: bool
    prefill_syncs_host: bool
    eager_drafter: bool
    sparse_topk: int | None
    context_breakpoints: tuple[int, ...]

    def static_ops(self, tokens: int, padded: int, layers: int, *, mtp: bool) -> list[OpTime]:
        """Operators that depend only on the step's ``tokens`` (``padded`` to the CUDA graph size)."""
        ...

    def core_ops(self, batch: BatchStats, layers: int, *, mtp: bool) -> list[OpTime]:
        """Context-dependent attention work of the batch."""
        ...


ATTENTION_FAMILIES: dict[str, Callable[[CostContext], AttentionFamily]] = {}


def register_attention(kind: str) -> Callable[[type], type]:
    """Register an attention family class for models whose ``attention_kind`` is ``kind``."""

    def wrap(cls: type) -> type:
        ATTENTION_FAMILIES[kind] = cls
        return cls

    return wrap
