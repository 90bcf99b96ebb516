"""Points on Ray: a cluster at ``ray://host:port``, or a local Ray instance of ``workers`` CPUs started here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from perfsim.executors.extras import missing_extra


class RayExecutor:
    """Ray tasks with ``max_retries``: Ray reruns a task whose worker process died."""

    name = "ray"

    def __init__(self, address: str | None, workers: int, retries: int):
        try:
            import ray
        except ImportError as exc:
            raise missing_extra("ray", exc) from None
        self.ray, self.retries = ray, retries
        self.started = not ray.is_initialized()
        if self.started:
            if address is None:
                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                )
            else:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """(index, result) as tasks finish."""
        task = self.ray.remote(max_retries=self.retries, num_cpus=1)(fn)
        refs = [task.remote(item) for item in items]
        index = {ref: i for i, ref in enumerate(refs)}
        remaining = list(refs)
        while remaining:
            done, remaining = self.ray.wait(remaining, num_returns=1)
            for ref in done:
                yield index[ref], self.ray.get(ref)

    def close(self) -> None:
        """Shut Ray down when this executor started it."""
        if self.started:
            self.ray.shutdown()
