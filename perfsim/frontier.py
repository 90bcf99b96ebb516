"""The Pareto frontier of plan points: no other point is at least as good on both axes and better on one."""

from __future__ import annotations

import math
from collections.abc import Sequence


def pareto_front(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Indices of the points that maximize both ``x`` and ``y`` (non-dominated), in increasing ``x``.

    Points with a NaN coordinate are never on the front. Ties keep the first point given.
    """
    order = sorted(
        (i for i in range(len(xs)) if not (math.isnan(xs[i]) or math.isnan(ys[i]))),
        key=lambda i: (-xs[i], -ys[i], i),
    )
    front: list[int] = []
    best_y = -math.inf
    for i in order:  # from the largest x down: a point joins when its y beats every point with larger x
        if ys[i] > best_y:
            front.append(i)
            best_y = ys[i]
    return sorted(front, key=lambda i: (xs[i], i))
