"""The interface of an MoE all-to-all backend and the registry of vLLM's ``--all2all-backend`` names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime

#: vLLM 0.14.1's default --all2all-backend
DEFAULT_ALL2ALL_BACKEND = "allgather_reducescatter"


class All2AllBackend(Protocol):
    """Dispatch and combine of one MoE layer's tokens over the data-parallel ranks of an instance."""

    def ops(self, moe_tokens: int, layers: int) -> list[OpTime]:
        """Communication operators for ``moe_tokens`` tokens (all DP ranks, padded) in each of ``layers`` layers."""
        ...


ALL2ALL_BACKENDS: dict[str, Callable[[CostContext], All2AllBackend]] = {}


def register_all2all(name: str) -> Callable[[type], type]:
    """Register an all-to-all backend class under vLLM's ``--all2all-backend`` name."""

    def wrap(cls: type) -> type:
        ALL2ALL_BACKENDS[name] = cls
        return cls

    return wrap
