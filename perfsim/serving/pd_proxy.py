"""Disaggregated prefill/decode: vLLM's proxy flow with the NixlConnector, as SimPy parts.

The proxy sends each request to a prefill instance asking for one token; when the prefill finishes, the
prefill scheduler keeps the request's KV blocks (delayed free) and the proxy forwards the request to a decode
instance. The decode scheduler allocates the prompt's blocks, pulls the KV from the prefill instance over
the KV link (one pull at a time per decode instance), recomputes the last prompt token and decodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import simpy

from perfsim.costs.comm import Link, transfer
from perfsim.serving.api_server import ApiServer
from perfsim.serving.engine import Engine
from perfsim.serving.request import Request
from perfsim.serving.router import RoundRobin

#: KV pulls a decode instance runs at once. NIXL transfers share the decode node's link; one at a time at
#: full bandwidth moves the same bytes per second as concurrent ones sharing it, and finishes the first
#: request's pull sooner (FIFO rather than processor sharing)
KV_PULLS_AT_ONCE = 1


class PDProxy:
    """Routes requests through prefill instances, the KV pull and decode instances."""

    def __init__(
        self,
        env: simpy.Environment,
        requests: Sequence[Request],
        prefill: Sequence[Engine],
        decode: Sequence[Engine],
        *,
        api: ApiServer,
        kv_bytes_per_token: float,
        kv_link: Link,
        handoff_s: float,
    ):
        self.env, self.requests, self.api = env, requests, api
        self.prefill, self.decode = list(prefill), list(decode)
        self.kv_bytes_per_token, self.kv_link, self.handoff_s = kv_bytes_per_token, kv_link, handoff_s
        self.kv_transfer_s: list[float] = []
        self._prefill_rr, self._decode_rr = RoundRobin(len(self.prefill)), RoundRobin(len(self.decode))
        self._prefill_of: dict[int, tuple[Engine, int]] = {}
        self._pulls = {e.name: simpy.Resource(env, capacity=KV_PULLS_AT_ONCE) for e in self.decode}
        for e in self.prefill:
            e.on_finish = self._prefill_done
        for e in self.decode:
            for sched in e.schedulers:
                sched.on_remote_alloc = self._puller(e)

    def _puller(self, decode: Engine) -> Callable[[Request], None]:
        """The callback a decode scheduler calls once it allocated a request's blocks: start the pull."""

        def start(req: Request) -> None:
            self.env.process(self._pull(decode, req))

        return start

    def send(self, req: Request) -> None:
        """A client request: the proxy asks a prefill instance for one token first."""
        shadow = Request(req.request_id, req.num_client_prompt_tokens, req.num_prompt_tokens, 1)
        target = self.prefill[self._prefill_rr.pick()]
        self._prefill_of[req.request_id] = (target, -1)
        self.api.deliver(target, shadow)

    def _prefill_done(self, shadow: Request, now_s: float) -> None:
        """P finished the prompt: its scheduler keeps the blocks until D has pulled them (delayed free)."""
        engine, _ = self._prefill_of[shadow.request_id]
        self._prefill_of[shadow.request_id] = (engine, shadow.dp_rank)
        req = self.requests[shadow.request_id]
        req.do_remote_prefill = True
        req.num_computed_tokens = (
            req.num_prompt_tokens - 1
        )  # D recomputes the last prompt token to emit the first
        target = self.decode[self._decode_rr.pick()]
        # the proxy gets P's response and sends the request to D
        self.env.timeout(self.handoff_s).callbacks.append(lambda _event: target.submit(req))

    def _pull(self, decode: Engine, req: Request):
        """D pulls the prompt's KV from P into the blocks it allocated, then P frees them."""
        start = self.env.now
        with self._pulls[decode.name].request() as slot:
            yield slot
            yield self.env.timeout(transfer(req.num_prompt_tokens * self.kv_bytes_per_token, self.kv_link))
        self.kv_transfer_s.append(self.env.now - start)
        prefill, rank = self._prefill_of.pop(req.request_id)
        prefill.schedulers[rank].release(req.request_id)
        prefill.notify()
        decode.schedulers[req.dp_rank].remote_kv_ready(req)
        decode.notify()
