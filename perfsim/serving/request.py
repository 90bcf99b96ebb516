"""One request's state as it moves through the simulated client, proxy and engine, named as vLLM names it."""

from __future__ import annotations

import enum


class RequestStatus(enum.IntEnum):
    """Where a request is (vLLM's ``v1/request.py`` RequestStatus, without the structured-output states)."""

    NEW = enum.auto()  # created by the client, not yet at an engine
    WAITING = enum.auto()
    WAITING_FOR_REMOTE_KVS = enum.auto()  # P/D decode side: blocks allocated, KV being pulled
    RUNNING = enum.auto()
    PREEMPTED = enum.auto()  # back in the waiting queue, recomputed on resume
    FINISHED = enum.auto()

    @property
    def is_waiting(self) -> bool:
        """True for the states of the waiting queue (new arrivals and preempted requests)."""
        return self in (RequestStatus.WAITING, RequestStatus.PREEMPTED)


class Request:
    """A request of the benchmark: its lengths and the scheduler state it carries while not running.

    Token counts are in tokens; times in seconds of simulated time. ``num_output_tokens`` counts output tokens
    whose step has completed (they reached the client); ``num_output_placeholders`` those scheduled but not yet
    completed (vLLM's output placeholders under async scheduling, and optimistic MTP drafts). While a request
    runs, the scheduler keeps these counters in its running table and writes them back on preemption or finish.
    """

    __slots__ = (
        "request_id",
        "num_client_prompt_tokens",
        "num_prompt_tokens",
        "max_tokens",
        "send_time_s",
        "num_computed_tokens",
        "num_output_tokens",
        "num_output_placeholders",
        "num_blocks",
        "status",
        "dp_rank",
        "finish_time_s",
        "num_preemptions",
        "do_remote_prefill",
    )

    def __init__(
        self, request_id: int, num_client_prompt_tokens: int, num_prompt_tokens: int, max_tokens: int
    ):
        self.request_id = request_id
        self.num_client_prompt_tokens = num_client_prompt_tokens  # what bench serve counts as input tokens
        self.num_prompt_tokens = num_prompt_tokens  # what the server computes (BOS added)
        self.max_tokens = max_tokens
        self.send_time_s = -1.0
        self.num_computed_tokens = 0
        self.num_output_tokens = 0
        self.num_output_placeholders = 0
        self.num_blocks = 0
        self.status = RequestStatus.NEW
        self.dp_rank = -1
        self.finish_time_s = -1.0
        self.num_preemptions = 0
        #: P/D decode side: the prompt's KV must be pulled from a prefill instance (vLLM's kv_transfer_params)
        self.do_remote_prefill = False

    @property
    def num_tokens_with_placeholders(self) -> int:
        """Prompt plus output tokens, in-flight placeholders included."""
        return self.num_prompt_tokens + self.num_output_tokens + self.num_output_placeholders

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return (
            f"Request({self.request_id}, prompt={self.num_prompt_tokens}, "
            f"out={self.num_output_tokens}+{self.num_output_placeholders}/{self.max_tokens}, "
            f"computed={self.num_computed_tokens}, {self.status.name})"
        )
