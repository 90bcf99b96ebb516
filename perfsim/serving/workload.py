"""The load of ``vllm bench serve`` with the random dataset: prompt/output lengths and arrival times.

Follows vLLM 0.14.1 ``benchmarks/datasets.py`` (RandomDataset) and ``benchmarks/serve.py``:
input lengths are uniform integers in [floor(L'(1-r)), ceil(L'(1+r))] with L' = input_len minus the
tokenizer's special tokens (the server adds them back), output lengths in [max(1, floor(O(1-r))),
ceil(O(1+r))], drawn from ``np.random.default_rng(seed)``; arrival gaps are Gamma(burstiness,
1/(rate x burstiness)) from numpy's seeded global generator, cumulated and rescaled so the last arrival
is at N / rate. With rate = inf every request is ready at t = 0 and ``max_concurrency`` closes the loop.
The random dataset forces ``ignore_eos`` (0.12+): every request generates exactly its output length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from perfsim.errors import SpecError

#: bounds far above any real benchmark that keep memory and numpy's integer ranges safe
MAX_PROMPTS = 1_000_000
MAX_TOKENS = 100_000_000


class BenchConfig(BaseModel):
    """``vllm bench serve`` options (random dataset), named like its flags."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    num_prompts: int = Field(
        default=1000,
        ge=1,
        le=MAX_PROMPTS,
        description="Requests to send (memory grows with them: at most 10^6).",
    )
    random_input_len: int = Field(
        default=1024,
        ge=1,
        le=MAX_TOKENS,
        json_schema_extra={"cli": ["--random-input-len", "--input-len"]},
        description="Prompt length in tokens (special tokens included).",
    )
    random_output_len: int = Field(
        default=128,
        ge=1,
        le=MAX_TOKENS,
        json_schema_extra={"cli": ["--random-output-len", "--output-len"]},
        description="Output tokens per request.",
    )
    random_range_ratio: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Lengths are drawn uniformly within +-ratio of the nominal ones.",
    )
    random_prefix_len: int = Field(
        default=0, ge=0, le=MAX_TOKENS, description="Shared prefix tokens prepended to every prompt."
    )
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Maximum requests in flight (client "
        "semaphore; a request's clock starts after it gets a slot).",
    )
    request_rate: float = Field(default=math.inf, gt=0, description="Requests per second (inf: all at once).")
    burstiness: float = Field(default=1.0, gt=0, description="Gamma shape of arrival gaps (1 = Poisson).")
    seed: int = Field(
        default=0, ge=0, lt=2**32, description="Random seed of lengths and arrivals (0 to 2^32 - 1)."
    )
    percentile_metrics: str = Field(
        default="ttft,tpot,itl", description="Metrics with percentiles (ttft, tpot, itl, e2el)."
    )
    metric_percentiles: str = Field(default="99", description="Comma-separated percentiles to report.")
    goodput: list[str] | None = Field(
        default=None,
        description="Service level objectives as KEY:VALUE pairs in ms (keys ttft, tpot, e2el): reports "
        "request_goodput, the requests per second that meet all of them (vllm bench serve's definition).",
    )

    def goodput_slos_ms(self) -> dict[str, float] | None:
        """``--goodput`` as {metric: milliseconds}, checked as vLLM checks it; None when not given."""
        if not self.goodput:
            return None
        slos: dict[str, float] = {}
        for pair in self.goodput:
            name, sep, value = pair.partition(":")
            try:
                number = float(value) if sep else math.nan
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise SpecError(
                    f"--goodput '{pair}': expected KEY:VALUE with VALUE in milliseconds, e.g. ttft:500"
                )
            if name not in ("ttft", "tpot", "e2el"):
                raise SpecError(f"--goodput '{pair}': unknown metric {name}; allowed: ttft, tpot, e2el")
            if number < 0:
                raise SpecError(f"--goodput '{pair}': the objective must be non-negative")
            slos[name] = number
        return slos

    def percentiles(self) -> list[float]:
        """The requested percentiles as floats."""
        try:
            values = [float(p) for p in self.metric_percentiles.split(",") if p.strip()]
        except ValueError:
            raise SpecError(
                f"--metric-percentiles '{self.metric_percentiles}': expected numbers like 50,90,99"
            ) from None
        if any(not 0 <= p <= 100 for p in values):
            raise SpecError("--metric-percentiles: percentiles must be within 0..100")
        return values

    def selected_metrics(self) -> list[str]:
        """The metrics with percentiles (subset of ttft, tpot, itl, e2el)."""
        names = [m.strip() for m in self.percentile_metrics.split(",") if m.strip()]
        bad = [m for m in names if m not in ("ttft", "tpot", "itl", "e2el")]
        if bad:
            raise SpecError(f"--percentile-metrics: unknown {', '.join(bad)}; allowed: ttft, tpot, itl, e2el")
        return names


@dataclass(frozen=True)
class Workload:
    """Concrete requests: client-side prompt lengths, server-side prompt lengths, outputs, arrival times (s)."""

    client_prompt_lens: np.ndarray
    server_prompt_lens: np.ndarray
    output_lens: np.ndarray
    arrival_s: np.ndarray

    def __len__(self) -> int:
        return int(self.client_prompt_lens.size)


def make_workload(cfg: BenchConfig, *, special_tokens: int = 1) -> Workload:
    """Draw the benchmark's requests like vLLM's random dataset and request generator."""
    n = cfg.num_prompts
    rng = np.random.default_rng(cfg.seed)
    real_in = max(0, cfg.random_input_len - special_tokens)
    r = cfg.random_range_ratio
    in_lo, in_hi = math.floor(real_in * (1 - r)), math.ceil(real_in * (1 + r))
    out_lo = max(math.floor(cfg.random_output_len * (1 - r)), 1)
    out_hi = max(math.ceil(cfg.random_output_len * (1 + r)), 1)
    if in_lo + cfg.random_prefix_len < 1:
        raise SpecError(
            f"--random-input-len {cfg.random_input_len} with --random-range-ratio {r} can draw prompts with "
            f"no tokens after the tokenizer's {special_tokens} special token(s) (vLLM refuses this too)"
        )
    input_lens = rng.integers(in_lo, in_hi + 1, size=n)
    output_lens = rng.integers(out_lo, out_hi + 1, size=n)
    client = input_lens + cfg.random_prefix_len
    server = client + special_tokens
    return Workload(
        client_prompt_lens=client.astype(np.int64),
        server_prompt_lens=server.astype(np.int64),
        output_lens=output_lens.astype(np.int64),
        arrival_s=arrival_times(n, cfg.request_rate, cfg.burstiness, cfg.seed),
    )


def arrival_times(n: int, rate: float, burstiness: float, seed: int) -> np.ndarray:
    """Send-eligible times (s) of ``n`` requests: gamma gaps rescaled so the last is at n / rate."""
    if math.isinf(rate):
        return np.zeros(n)
    if math.isinf(burstiness):
        gaps = np.full(n, 1.0 / rate)
    else:
        gaps = np.random.RandomState(seed).gamma(shape=burstiness, scale=1.0 / (rate * burstiness), size=n)
    times = np.cumsum(gaps)
    if times[-1] > 0:
        times *= (n / rate) / times[-1]
    return times
