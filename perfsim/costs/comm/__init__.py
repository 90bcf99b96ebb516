"""Communication costs: collectives and point-to-point transfers over a link (``collectives``)."""

from perfsim.costs.comm.collectives import (
    Link,
    all_gather,
    all_reduce,
    group_link,
    link,
    reduce_scatter,
    transfer,
)

__all__ = ["Link", "all_gather", "all_reduce", "group_link", "link", "reduce_scatter", "transfer"]
