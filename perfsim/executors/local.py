"""Points in this process (one worker) or in a local process pool that is rebuilt when a worker dies."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from perfsim.errors import PerfsimError


class LocalExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes (``workers == 1``: this process, no pool)."""

    name = "local"

    def __init__(self, workers: int, retries: int):
        self.workers, self.retries = workers, retries

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """(index, result) as points finish; a dead worker breaks the pool, which is rebuilt and the
        unfinished points resubmitted (at most ``retries`` times each)."""
        if self.workers == 1 or len(items) <= 1:
            for i, item in enumerate(items):
                yield i, fn(item)
            return
        attempts = [0] * len(items)
        pending = list(range(len(items)))
        while pending:
            pool = ProcessPoolExecutor(min(self.workers, len(pending)))
            try:
                futures: dict[Future, int] = {pool.submit(fn, items[i]): i for i in pending}
                for i in pending:
                    attempts[i] += 1
                broken = False
                while futures and not broken:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        i = futures.pop(future)
                        try:
                            result = future.result()
                        except BrokenProcessPool:
                            broken = True
                            continue
                        pending.remove(i)
                        yield i, result
            except BaseException:  # Ctrl-C, an error, or the caller stopped: stop the workers, do not wait
                _stop(pool)
                raise
            pool.shutdown(wait=True)
            if broken:
                over = [i for i in pending if attempts[i] > self.retries]
                if over:
                    raise PerfsimError(
                        f"a worker died {self.retries + 1} times while running point {over[0]}; giving up"
                    )

    def close(self) -> None:
        """Nothing to release: each run's pool is closed when it ends."""


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (``shutdown`` alone waits for every queued point)."""
    processes = dict(
        getattr(pool, "_processes", None) or {}
    )  # shutdown forgets them; Python < 3.14 has no kill
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes.values():
        process.terminate()
