"""Points on a Dask cluster: one at ``address``, or a local cluster of ``workers`` processes started here."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from perfsim.executors.extras import missing_extra


class DaskExecutor:
    """``distributed.Client`` tasks with ``retries``; Dask reschedules the tasks of a worker that died."""

    name = "dask"

    def __init__(self, address: str | None, workers: int, retries: int):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise missing_extra("dask", exc) from None
        self.retries = retries
        self.cluster = None
        if address is None:
            self.cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
            self.client = Client(self.cluster)
        else:
            self.client = Client(address, timeout=30)

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """(index, result) as tasks finish."""
        from distributed import as_completed

        futures = [self.client.submit(fn, item, retries=self.retries, pure=False) for item in items]
        index = {future.key: i for i, future in enumerate(futures)}
        for future in as_completed(futures):
            yield index[future.key], future.result()

    def close(self) -> None:
        """Close the client, and the cluster when this executor started it."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
