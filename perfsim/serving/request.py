"""One request's state as it moves through the simulated client and engine."""

from __future__ import annotations


class Request:
    """A request of the benchmark: lengths, scheduler state and the times its tokens reached the client.

    Token counts are in tokens; times in seconds of simulated time. ``num_sampled`` counts output tokens
    sampled or in flight (vLLM's output placeholders under async scheduling); ``emit_steps`` lists the
    engine steps whose output carried tokens for this request (one SSE chunk each).
    """

    __slots__ = (
        "id", "client_prompt_len", "prompt_len", "max_tokens", "send_time", "num_computed", "num_sampled",
        "num_emitted", "blocks", "state", "engine", "first_token_time", "chunk_times", "finish_time",
        "preemptions", "kv_ready_time", "admitted_step",
    )

    def __init__(self, rid: int, client_prompt_len: int, prompt_len: int, max_tokens: int):
        self.id = rid
        self.client_prompt_len = client_prompt_len  # what bench serve counts as input tokens
        self.prompt_len = prompt_len  # what the server computes (BOS added)
        self.max_tokens = max_tokens
        self.send_time = -1.0
        self.num_computed = 0
        self.num_sampled = 0
        self.num_emitted = 0
        self.blocks = 0
        self.state = "new"  # new, waiting, running, finished
        self.engine = -1
        self.first_token_time = -1.0
        self.chunk_times: list[float] = []
        self.finish_time = -1.0
        self.preemptions = 0
        self.kv_ready_time = -1.0
        self.admitted_step = -1

    @property
    def num_tokens(self) -> int:
        """Prompt plus output tokens sampled so far (in-flight placeholders included)."""
        return self.prompt_len + self.num_sampled

    @property
    def in_prefill(self) -> bool:
        """True while the prompt (or a preempted request's recompute) is not fully computed."""
        return self.num_computed < self.prompt_len + max(self.num_sampled - 1, 0)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return (f"Request({self.id}, prompt={self.prompt_len}, out={self.num_sampled}/{self.max_tokens}, "
                f"computed={self.num_computed}, {self.state})")
