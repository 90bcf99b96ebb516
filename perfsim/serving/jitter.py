"""Seeded run-to-run jitter: multiplicative noise on engine step times and on the API server's latency.

Real runs never repeat a step time exactly; without noise, fixed-length requests admitted together stay in
lock-step waves forever. Each factor is lognormal with mean 1 and the given coefficient of variation. A
``JitterStream`` hands out its factors in order, whether one at a time (a step) or many (a block of decode
steps, which may be cut short): the n-th step always gets the n-th factor, so the simulator's shortcuts stay
exact.
"""

from __future__ import annotations

import math

import numpy as np

#: factors drawn at a time
CHUNK = 4096


def lognormal_sigma(cv: float) -> float:
    """Sigma of a lognormal with coefficient of variation ``cv``."""
    return math.sqrt(math.log1p(cv * cv))


class JitterStream:
    """Lognormal factors of mean 1 and coefficient of variation ``cv`` (all 1.0 when ``cv`` is 0)."""

    def __init__(self, cv: float, seed: tuple[int, ...]):
        self.sigma = lognormal_sigma(cv)
        self.rng = np.random.default_rng(list(seed))
        self._buffer = np.ones(0)
        self._next = 0

    def peek(self, n: int) -> np.ndarray:
        """The next ``n`` factors, without using them up."""
        if self.sigma == 0.0:
            return np.ones(n)
        while self._buffer.size - self._next < n:
            fresh = self.rng.lognormal(-(self.sigma**2) / 2, self.sigma, CHUNK)
            self._buffer = np.concatenate([self._buffer[self._next :], fresh])
            self._next = 0
        return self._buffer[self._next : self._next + n]

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` factors, used up."""
        out = self.peek(n).copy()
        if self.sigma != 0.0:
            self._next += n
        return out

    def one(self) -> float:
        """The next factor."""
        return float(self.take(1)[0])
