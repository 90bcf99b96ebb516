"""vLLM's API server in front of an engine core: a request reaches the engine after its front-end latency."""

from __future__ import annotations

from typing import Protocol

import simpy

from perfsim.serving.jitter import JitterStream
from perfsim.serving.request import Request


class Submits(Protocol):
    """Anything that takes requests (an engine)."""

    def submit(self, req: Request) -> None:
        """Take a request."""
        ...


class ApiServer:
    """Delivers each request to its engine after its front-end latency (HTTP, tokenization, IPC): ``latency_s``
    on average, spread by ``jitter`` (a factor per request, in the order requests are sent)."""

    def __init__(self, env: simpy.Environment, latency_s: float, jitter: JitterStream | None = None):
        self.env, self.latency_s = env, latency_s
        self.jitter = jitter or JitterStream(0.0, (0,))

    def deliver(self, engine: Submits, req: Request) -> None:
        """Hand ``req`` to ``engine`` after the front-end latency."""
        if self.latency_s > 0:
            delay = self.latency_s * self.jitter.one()
            self.env.timeout(delay).callbacks.append(lambda _event: engine.submit(req))
        else:
            engine.submit(req)
