"""The ``vllm bench serve`` client as a SimPy process: arrivals, the concurrency semaphore, the request timer.

Requests become eligible at their arrival times (``perfsim.serving.workload``); each then waits for one of
``--max-concurrency`` slots (a ``simpy.Resource``, as bench serve's asyncio semaphore) and its clock starts
when it gets one; a slot frees when the request's last token arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import simpy

from perfsim.progress import progress_bar
from perfsim.serving.request import Request


class Progress:
    """Finished requests on a progress bar, where one is watched (``perfsim.progress``)."""

    def __init__(self, total: int, enabled: bool):
        self.bar = progress_bar(total, "simulating requests", enabled=enabled)
        self.total, self.done = total, 0

    def tick(self) -> None:
        """One more request finished."""
        self.done += 1
        self.bar.update(1)
        if self.done == self.total:
            self.bar.close()


class ConcurrencyLimit(simpy.Resource):
    """bench serve's ``--max-concurrency`` semaphore as a ``simpy.Resource`` that counts its free slots.

    A slot is taken at once when one is free and nobody waits (``take_free_slot``, no event); otherwise the
    request waits in the resource's queue (``request()``). ``free`` hands the slot to the first waiting
    request at once and schedules nothing when nobody waits, as ``asyncio.Semaphore`` does; simpy's own
    ``release`` is an event processed later, which would leave a pending event at every finish (and stop
    the engines from batching identical decode steps).
    """

    def __init__(self, env: simpy.Environment, capacity: int):
        super().__init__(env, capacity)
        self.free_slots = capacity

    @property
    def count(self) -> int:
        """Slots in use."""
        return int(self.capacity) - self.free_slots

    def _do_put(self, event: simpy.resources.resource.Request) -> None:
        if self.free_slots > 0:
            self.free_slots -= 1
            event.usage_since = self._env.now
            event.succeed()

    def take_free_slot(self) -> bool:
        """Take a slot at once if one is free and nobody waits (no event); False: wait for ``request()``."""
        if self.free_slots > 0 and not self.put_queue:
            self.free_slots -= 1
            return True
        return False

    def free(self) -> None:
        """Free one slot, granting it to the first waiting request, if any."""
        self.free_slots += 1
        self._trigger_put(None)


class BenchClient:
    """Sends ``requests`` at ``arrival_s`` through ``send``, at most ``max_concurrency`` at a time."""

    def __init__(
        self,
        env: simpy.Environment,
        requests: Sequence[Request],
        arrival_s: np.ndarray,
        max_concurrency: int | None,
        *,
        progress: bool = False,
    ):
        self.env = env
        self.requests = list(requests)
        self.arrival_s = arrival_s
        self.slots = ConcurrencyLimit(env, capacity=max_concurrency or max(len(self.requests), 1))
        self.num_finished = 0
        self.all_finished = env.event()
        self._progress = Progress(len(self.requests), progress)

    def start(self, send: Callable[[Request], None]) -> None:
        """Start sending; ``send`` hands a request to the serving system."""
        self.env.process(self._run(send))

    def _run(self, send: Callable[[Request], None]):
        env = self.env
        for i, req in enumerate(self.requests):
            wait = float(self.arrival_s[i]) - env.now
            if wait > 0:
                yield env.timeout(wait)
            if not self.slots.take_free_slot():  # every slot busy: wait for a request to finish
                yield self.slots.request()
            req.send_time_s = env.now
            send(req)

    def finish(self, req: Request, now_s: float) -> None:
        """The request's last token arrived: free its slot."""
        self.slots.free()
        self.num_finished += 1
        self._progress.tick()
        if self.num_finished == len(self.requests):
            self.all_finished.succeed()
