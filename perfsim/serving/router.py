"""Where a request goes: vLLM's DP load balancer across the ranks of one instance, round robin across instances."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

#: vLLM's DP load balancer scores a rank by waiting x 4 + running (v1/engine/core_client.py,
#: DPLBAsyncMPClient.get_core_engine_for_request); vLLM's counts may lag by up to 100 ms, perfsim's are exact
DP_LB_WAITING_WEIGHT = 4


class RankLoad(Protocol):
    """What the balancer reads of a rank's scheduler."""

    @property
    def num_running(self) -> int:
        """Requests in the running set."""
        ...

    @property
    def waiting(self) -> Sequence[object]:
        """The waiting queue."""
        ...


def dp_rank_score(load: RankLoad) -> int:
    """vLLM's load score of one DP rank: 4 x waiting + running (lower is less loaded)."""
    return DP_LB_WAITING_WEIGHT * len(load.waiting) + load.num_running


def least_loaded_rank(ranks: Sequence[RankLoad]) -> int:
    """The DP rank a new request goes to: the lowest score, the first such rank on ties."""
    return min(range(len(ranks)), key=lambda r: dp_rank_score(ranks[r]))


class RoundRobin:
    """Cycles through ``n`` targets (the proxy's choice of instance)."""

    def __init__(self, n: int):
        self.n = n
        self._next = 0

    def pick(self) -> int:
        """The next target's index."""
        i = self._next % self.n
        self._next += 1
        return i
