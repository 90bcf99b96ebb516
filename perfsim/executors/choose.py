"""The executor an ``--executor`` value names."""

from __future__ import annotations

import os

from perfsim.errors import SpecError
from perfsim.executors.base import DEFAULT_RETRIES, EXECUTOR_SPELLINGS, Executor
from perfsim.executors.dask_cluster import DaskExecutor
from perfsim.executors.local import LocalExecutor
from perfsim.executors.ray_cluster import RayExecutor


def make_executor(spec: str | None, workers: int | None = None, retries: int = DEFAULT_RETRIES) -> Executor:
    """The executor an ``--executor`` value names; ``workers`` sizes a local pool or a cluster started here."""
    n = workers or os.cpu_count() or 1
    spec = (spec or "local").strip()
    if spec in ("local", "process", "processes"):
        return LocalExecutor(n, retries)
    if spec == "dask" or spec.startswith(("dask://", "tcp://")):
        address = None if spec == "dask" else "tcp://" + spec.split("://", 1)[1]
        return DaskExecutor(address, n, retries)
    if spec == "ray" or spec.startswith("ray://"):
        return RayExecutor(None if spec == "ray" else spec, n, retries)
    raise SpecError(f"--executor {spec}: allowed: {EXECUTOR_SPELLINGS}")
