"""Which MoE kernel family vLLM runs for a checkpoint's routed experts on a GPU kind."""

from __future__ import annotations

from perfsim.specs.hardware import HardwareSpec


def mxfp4_moe_backend(hw: HardwareSpec) -> str:
    """The MXFP4 MoE kernel family vLLM 0.13.0 runs on ``hw``: FlashInfer's TRT-LLM-gen ('trtllm') on Blackwell,
    else Marlin W4A16 ('marlin', the ``VLLM_MXFP4_USE_MARLIN=1`` path; vLLM's default Triton MoE is not
    modelled) [quantization/mxfp4.py:278-333]."""
    return "trtllm" if hw.is_blackwell else "marlin"
