"""Cached count-only parts of engine steps, shared by every cost model built from equal specs.

The operators of a step that depend only on its token counts (projections, MLPs, MoE, logits) are costed
once per shape. The cache is shared across cost models of the same model, GPU, deployment and parameters, so
the points of a sweep (same deployment, other workloads) reuse each other's step shapes. Bounded: the least
recently used spec set is dropped, and a full shape cache is cleared.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from perfsim.costs.params import CostParams
from perfsim.costs.roofline import OpTime
from perfsim.specs.deployment import ResolvedDeployment
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model

#: Step shapes kept per cost-model spec set before the cache is cleared (a shape is a few kB).
STATIC_CACHE_MAX_SHAPES = 4096
#: spec sets whose shape caches are kept
SHARED_CACHE_MAX_SPECS = 8


@dataclass(frozen=True, slots=True)
class KernelCounts:
    """Kernels of a set of operators: all of them, those inside the attention custom op (eager between
    piecewise CUDA-graph pieces) and those always launched eagerly (logits, sampler)."""

    kernels: int
    attention: int
    eager: int

    def __add__(self, other: KernelCounts) -> KernelCounts:
        return KernelCounts(
            kernels=self.kernels + other.kernels,
            attention=self.attention + other.attention,
            eager=self.eager + other.eager,
        )

    def scaled(self, times: int) -> KernelCounts:
        """``times`` runs of the same operators."""
        return KernelCounts(
            kernels=self.kernels * times, attention=self.attention * times, eager=self.eager * times
        )


def kernel_counts(ops: Sequence[OpTime]) -> KernelCounts:
    """Kernels of ``ops`` over all their layers, by where they are launched."""
    total = attention = eager = 0
    for o in ops:
        n = o.kernels * o.layers
        total += n
        if o.launch == "attention":
            attention += n
        elif o.launch == "eager":
            eager += n
    return KernelCounts(kernels=total, attention=attention, eager=eager)


@dataclass(frozen=True, slots=True)
class StaticPart:
    """Cached operators of a step that depend only on its token counts, with their totals.

    ``time_s``: summed operator seconds; ``counts``: their kernels; ``by_category_s``: seconds per category.
    """

    ops: tuple[OpTime, ...]
    time_s: float
    counts: KernelCounts
    by_category_s: dict[str, float]


_SHARED: OrderedDict[str, dict[tuple, StaticPart]] = OrderedDict()


def shared_static_cache(
    model: Model, hw: HardwareSpec, dep: ResolvedDeployment, params: CostParams
) -> dict[tuple, StaticPart]:
    """The shape cache of this spec set (created on first use)."""
    key = "\n".join((repr(model), hw.model_dump_json(), repr(dep), params.model_dump_json()))
    cache = _SHARED.get(key)
    if cache is None:
        cache = _SHARED[key] = {}
        while len(_SHARED) > SHARED_CACHE_MAX_SPECS:
            _SHARED.popitem(last=False)
    else:
        _SHARED.move_to_end(key)
    return cache


def cache_put(cache: dict[tuple, StaticPart], key: tuple, part: StaticPart) -> None:
    """Store a shape, clearing the cache when it is full."""
    if len(cache) >= STATIC_CACHE_MAX_SHAPES:
        cache.clear()
    cache[key] = part


def static_part(ops: list[OpTime]) -> StaticPart:
    """Totals of a list of count-only operators."""
    by_category: dict[str, float] = {}
    for o in ops:
        by_category[o.category] = by_category.get(o.category, 0.0) + o.time_s
    return StaticPart(
        ops=tuple(ops),
        time_s=sum(o.time_s for o in ops),
        counts=kernel_counts(ops),
        by_category_s=by_category,
    )
