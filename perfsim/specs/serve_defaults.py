"""vLLM 0.14.1's serving defaults that depend on the GPU or the model (`vllm serve` without the flags)."""

from __future__ import annotations

from perfsim.specs.hardware import HardwareSpec

#: vLLM 0.14.1 engine defaults for `vllm serve` (API server) on GPUs with >= 70 GiB (not A100)
#: [engine/arg_utils.py:1817-1898]; smaller GPUs get 2048 tokens / 256 sequences.
SERVE_DEFAULTS_LARGE_GPU = (8192, 1024)
SERVE_DEFAULTS_SMALL_GPU = (2048, 256)
LARGE_GPU_MIN_BYTES = 70 * 2**30


def serve_defaults(hw: HardwareSpec) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) that `vllm serve` 0.14.1 picks for this GPU."""
    return (
        SERVE_DEFAULTS_LARGE_GPU if hw.hbm_usable_bytes >= LARGE_GPU_MIN_BYTES else SERVE_DEFAULTS_SMALL_GPU
    )


#: DeepSeek MTP acceptance per draft position, from TensorRT-LLM's DeepSeek-R1 measurements
#: (accepted tokens per step 1.92 / 2.58 / 2.82 at depth 1 / 2 / 3; tech blog 1, 2025-05):
#: p1 = 0.92, p1*p2 = 0.66, p1*p2*p3 = 0.24.
DEFAULT_MTP_ACCEPTANCE = (0.92, 0.717, 0.364, 0.4, 0.4, 0.4, 0.4, 0.4)


#: gpt-oss raises vLLM's default largest CUDA-graph batch from 512 to 1024 [models/config.py, GptOssForCausalLMConfig]
GPT_OSS_CAPTURE_CAP = 1024
