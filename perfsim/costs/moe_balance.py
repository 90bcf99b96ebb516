"""How unevenly routed tokens land on expert-parallel ranks: the busiest rank's load over the mean.

With ``ep`` ranks holding the ``num_experts`` routed experts in contiguous blocks (vLLM's linear placement
[config/parallel.py:143]), the fullest ranks hold ``m = ceil(num_experts / ep)`` experts: a structural factor
``m x ep / num_experts`` (1.125 at EP72 for 256 experts). On top of it, a rank's share of one step's
``tokens x top_k`` assignments varies from two sources: the sampling of a finite number of tokens (variance
about ``1/lambda`` for ``lambda`` expected assignments, less the top-k draws without replacement) and the
unequal popularity of experts in the workload (a rank sums ``m`` popularities of coefficient of variation
``cv``). The busiest of the fullest ranks is then about ``c_n`` standard deviations above the mean, ``c_n``
being the expected maximum of ``n`` standard normals. This reproduces a Monte Carlo of DeepSeek-V3's grouped
routing within about 0.02 (uniform popularity: 1.06 at EP8, 1.14 at EP32 and 1.34 at EP72 for 1,024 tokens).
"""

from __future__ import annotations

import math
from statistics import NormalDist

_STANDARD_NORMAL = NormalDist()


def expected_max_of_normals(n: int) -> float:
    """Expected maximum of ``n`` independent standard normals (Blom's approximation; 0 for one)."""
    if n <= 1:
        return 0.0
    return _STANDARD_NORMAL.inv_cdf((n - 0.375) / (n + 0.25))


#: variance of a rank's sampled load under DeepSeek-V3's grouped routing (keep 4 of 8 expert groups, then the
#: top 8) over plain top-k routing: picks cluster in the kept groups (Monte Carlo, about 1.3 at EP8)
GROUPED_ROUTING_VARIANCE = 1.3


def ep_load_factor(
    num_experts: int, top_k: int, ep: int, tokens: float, popularity_cv: float, *, grouped: bool = False
) -> float:
    """Load of the busiest of ``ep`` ranks over the mean rank load, for ``tokens`` routed tokens in a step
    (``grouped``: DeepSeek-V3's group-limited routing)."""
    if ep <= 1 or tokens <= 0:
        return 1.0
    m = math.ceil(num_experts / ep)
    full_ranks = num_experts - (m - 1) * ep  # ranks holding m experts (the rest hold m - 1)
    structural = m * ep / num_experts
    share = m / num_experts
    expected = tokens * top_k * share
    sampling = (1 - share) * (num_experts - top_k) / (num_experts - 1) / expected
    if grouped:
        sampling *= GROUPED_ROUTING_VARIANCE
    popularity = (1 - share) * popularity_cv**2 / m
    return structural * (1 + expected_max_of_normals(full_ranks) * math.sqrt(sampling + popularity))
