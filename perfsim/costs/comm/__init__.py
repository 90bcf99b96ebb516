"""Communication costs: collectives over a link (``collectives``) and the MoE all-to-all backends (``all2all``)."""

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
