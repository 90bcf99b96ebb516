"""vLLM 0.14.1's CUDA-graph policy: the mode a deployment resolves to, the capture sizes, and one step's padding.

The mode follows from the attention backend (which FULL graphs it can capture), MTP and ``--enforce-eager``
[gpu_model_runner.py:5128-5147]; the capture sizes from ``max_cudagraph_capture_size``
[config/compilation.py:1076-1116, config/vllm.py:1113-1161]. A step whose token count fits a captured size
replays the graph padded to that size: FULL for uniform decode batches when the mode allows it, PIECEWISE
(attention launched eagerly between graph pieces) otherwise; larger steps run eagerly.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from perfsim.specs.attention import BACKENDS

#: default max_cudagraph_capture_size: min(max_num_seqs x decode query length x 2, 512, max_num_batched_tokens)
#: [config/vllm.py:1124-1128]
CAPTURE_SEQS_FACTOR, MAX_CAPTURE_SIZE = 2, 512


def cudagraph_mode(
    backend: str, num_speculative_tokens: int, sparse: bool, enforce_eager: bool
) -> tuple[str, str | None]:
    """vLLM's resolved CUDA-graph mode ('FULL_AND_PIECEWISE', 'PIECEWISE' or 'NONE') and a note when downgraded.

    FULL graphs need every attention backend of the model to support the step's uniform batch; the V3.2
    indexer and CUTLASS_MLA support one-token decode only, TRITON_MLA none [gpu_model_runner.py:5128-5147].
    """
    if enforce_eager:
        return "NONE", None
    graphs = BACKENDS[backend].graphs
    if graphs == "never":
        return "PIECEWISE", f"{backend} cannot run inside FULL CUDA graphs: PIECEWISE graphs only"
    if num_speculative_tokens and (sparse or graphs == "single_token"):
        return (
            "PIECEWISE",
            "MTP with this attention backend downgrades CUDA graphs to PIECEWISE (vLLM 0.14.1)",
        )
    return "FULL_AND_PIECEWISE", None


def default_max_capture_size(
    max_num_seqs: int, num_speculative_tokens: int, max_num_batched_tokens: int, *, cap: int | None = None
) -> int:
    """vLLM's default ``max_cudagraph_capture_size`` (tokens); ``cap`` replaces the 512 (a model's own)."""
    return min(
        max_num_seqs * (1 + num_speculative_tokens) * CAPTURE_SEQS_FACTOR,
        cap or MAX_CAPTURE_SIZE,
        max_num_batched_tokens,
    )


def capture_sizes(max_size: int, multiple_of: int = 1) -> list[int]:
    """vLLM 0.14 CUDA-graph capture sizes: 1, 2, 4, then steps of 8 below 256 and of 16 from 256.

    With MTP and FULL decode graphs vLLM rounds each size up to a multiple of the verify length 1 + k, dropping
    those that then exceed ``max_size`` [config/compilation.py:1076-1116].
    """
    sizes = [1, 2, 4] + list(range(8, 256, 8)) + list(range(256, max_size + 1, 16))
    sizes = [s for s in sizes if s <= max_size]
    if multiple_of > 1:
        rounded = sorted({-(-s // multiple_of) * multiple_of for s in sizes})
        sizes = [s for s in rounded if s <= max_size] or ([multiple_of] if multiple_of <= max_size else [])
    return sizes


@dataclass(frozen=True)
class CudaGraphPolicy:
    """The resolved graph mode and capture sizes of one deployment; decides each step's graph and padding."""

    mode: str
    capture_sizes: tuple[int, ...]

    @classmethod
    def build(cls, mode: str, max_capture_size: int, num_speculative_tokens: int) -> CudaGraphPolicy:
        """The policy of a deployment resolved to ``mode`` with ``max_capture_size`` tokens."""
        if mode == "NONE":
            return cls(mode=mode, capture_sizes=())
        spec_graphs = mode == "FULL_AND_PIECEWISE" and num_speculative_tokens
        multiple_of = 1 + num_speculative_tokens if spec_graphs else 1
        return cls(mode=mode, capture_sizes=tuple(capture_sizes(max_capture_size, multiple_of)))

    def for_step(self, tokens: int, uniform_decode: bool) -> tuple[str, int]:
        """(graph mode, padded tokens) of a step of ``tokens`` tokens: 'FULL', 'PIECEWISE' or 'NONE'."""
        sizes = self.capture_sizes
        if self.mode == "NONE" or tokens > (sizes[-1] if sizes else 0):
            return "NONE", tokens
        padded = sizes[bisect.bisect_left(sizes, tokens)]
        if self.mode == "FULL_AND_PIECEWISE" and uniform_decode:
            return "FULL", padded
        return "PIECEWISE", padded
