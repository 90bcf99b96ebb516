"""One request's state as it moves through the simulated client and engine."""

from __future__ import annotations


class Request:
    """A request of the benchmark: its lengths and the scheduler state it carries while not running.

    Token counts are in tokens; times in seconds of simulated time. ``num_sampled`` counts output tokens
    sampled or in flight (vLLM's output placeholders under async scheduling). While a request runs, the
    scheduler keeps these counters in its arrays and writes them back on preemption or finish.
    """

    __slots__ = (
        "id",
        "client_prompt_len",
        "prompt_len",
        "max_tokens",
        "send_time",
        "num_computed",
        "num_sampled",
        "num_emitted",
        "blocks",
        "state",
        "engine",
        "finish_time",
        "preemptions",
        "needs_remote_kv",
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
        self.finish_time = -1.0
        self.preemptions = 0
        self.needs_remote_kv = (
            False  # P/D decode side: the prompt's KV must be pulled from a prefill instance
        )

    @property
    def num_tokens(self) -> int:
        """Prompt plus output tokens sampled so far (in-flight placeholders included)."""
        return self.prompt_len + self.num_sampled

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return (
            f"Request({self.id}, prompt={self.prompt_len}, out={self.num_sampled}/{self.max_tokens}, "
            f"computed={self.num_computed}, {self.state})"
        )
