"""The executor protocol and the ``--executor`` spellings."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

#: attempts per point when its worker dies (a point that raises is not retried: it fails the same way again)
DEFAULT_RETRIES = 3

EXECUTOR_SPELLINGS = "local, dask, dask://HOST:PORT, ray, ray://HOST:PORT"


class Executor(Protocol):
    """Runs ``fn`` over items somewhere and yields (index, result) as each finishes, each index once."""

    name: str

    def run(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """(index into ``items``, ``fn(item)``) in completion order; retries items whose worker died."""
        ...

    def close(self) -> None:
        """Release the workers (and a cluster this executor started)."""
        ...
