"""Where the points of a sweep or a plan run: this process, a local process pool, a Dask or a Ray cluster.

``make_executor`` reads the ``--executor`` spelling (``local``, ``dask``, ``dask://host:8786``, ``ray``,
``ray://host:10001``); ``run_all`` maps a function over points on one of them with retries, each point's result
kept once, and an optional journal file from which an interrupted run resumes. Nothing here knows what a point
is: results come back in the order of the points, so every executor gives the same output.
"""

from perfsim.executors.base import Executor
from perfsim.executors.choose import make_executor
from perfsim.executors.journal import Journal
from perfsim.executors.run import run_all

__all__ = ["Executor", "Journal", "make_executor", "run_all"]
