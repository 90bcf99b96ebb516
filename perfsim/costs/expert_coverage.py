"""How many distinct routed experts one step's tokens touch, under the workload's expert popularity.

An expert whose per-token pick probability is ``p`` is read by a step of ``T`` routed tokens with probability
``1 - (1 - p)^T`` (tokens route independently; a token's own top-k picks are distinct, which leaves the marginal
unchanged). With uniform routing ``p = top_k / num_experts`` for every expert. Real routers are not uniform:
some experts are hot for every input (DeepSeek reports inherently hot experts; EPLB on random prompts gains
17-34 % at EP8, ROCm/ATOM PR #1210), and the same spread that makes expert-parallel ranks uneven
(``moe_balance``) makes a small batch read fewer distinct experts, since ``1 - (1 - p)^T`` is concave in ``p``:
hot experts are read anyway, cold ones are skipped more often than uniform routing says. Popularity is taken
as log-normal with coefficient of variation ``cv`` (mean 1), averaged over fixed quantiles.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

#: quantiles of the popularity distribution averaged over (midpoints of equal-probability bins)
POPULARITY_QUANTILES = 64
_Z = norm.ppf((np.arange(POPULARITY_QUANTILES) + 0.5) / POPULARITY_QUANTILES)


def popularity_weights(cv: float) -> np.ndarray:
    """Relative pick rates (mean exactly 1) of ``POPULARITY_QUANTILES`` equally likely experts whose popularity is
    log-normal with coefficient of variation ``cv``."""
    sigma = math.sqrt(math.log1p(cv * cv))
    w = np.exp(sigma * _Z)
    return np.asarray(w / w.mean())


def expected_active_experts(num_experts: float, p_pick: float, tokens: float, cv: float) -> float:
    """Expected number of the ``num_experts`` experts that at least one of ``tokens`` routed tokens picks, each
    token picking an expert with probability ``p_pick`` on average (top_k / experts) and experts' popularity
    spread by ``cv`` (0 = uniform routing)."""
    if tokens <= 0:
        return 0.0
    if cv <= 0.0:
        return num_experts * (1.0 - (1.0 - p_pick) ** tokens)
    p = np.minimum(p_pick * popularity_weights(cv), 1.0)
    return float(num_experts * np.mean(1.0 - (1.0 - p) ** tokens))
