"""vLLM's API server in front of an engine core: a request reaches the engine after its front-end latency."""

from __future__ import annotations

from typing import Protocol

import simpy

from perfsim.serving.request import Request


class Submits(Protocol):
    """Anything that takes requests (an engine)."""

    def submit(self, req: Request) -> None:
        """Take a request."""
        ...


class ApiServer:
    """Delivers each request to its engine ``latency_s`` after it was sent (HTTP, tokenization, IPC)."""

    def __init__(self, env: simpy.Environment, latency_s: float):
        self.env, self.latency_s = env, latency_s

    def deliver(self, engine: Submits, req: Request) -> None:
        """Hand ``req`` to ``engine`` after the front-end latency."""
        if self.latency_s > 0:
            self.env.timeout(self.latency_s).callbacks.append(lambda _event: engine.submit(req))
        else:
            engine.submit(req)
