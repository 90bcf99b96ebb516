"""Run a function over points on an executor, with a progress bar and an optional resume journal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from perfsim.executors.base import Executor
from perfsim.executors.journal import Journal, point_key
from perfsim.progress import progress_bar


def run_all(
    fn: Callable[[Any], Any],
    points: Sequence[Any],
    executor: Executor,
    *,
    journal: Journal | None = None,
    progress: bool = True,
    description: str = "points",
) -> list[Any]:
    """``[fn(p) for p in points]``, computed on ``executor``; points already in ``journal`` are not rerun, and
    each new result is journalled as it arrives (so a killed run loses at most the points in flight)."""
    done = journal.done if journal is not None else {}
    todo = [i for i, p in enumerate(points) if point_key(p) not in done]
    results: dict[int, Any] = {i: done[point_key(p)] for i, p in enumerate(points) if point_key(p) in done}
    if journal is not None:
        journal.start()
    with progress_bar(len(points), description, enabled=progress) as bar:
        bar.update(len(results))
        for j, result in executor.run(fn, [points[i] for i in todo]):
            i = todo[j]
            if i in results:  # a retried task that finished twice: keep the first
                continue
            results[i] = result
            if journal is not None:
                journal.add(points[i], result)
            bar.update(1)
    return [results[i] for i in range(len(points))]
