"""Byte widths of the data perfsim counts: weights by storage format, activations, logits, indices."""

from __future__ import annotations

from typing import Literal

WeightDtype = Literal["nvfp4", "mxfp4", "fp8", "bf16", "fp32"]

#: activations travel in BF16 between kernels
ACT_BYTES = 2
#: fp32 logits, scores and scales
FP32_BYTES = 4
#: logits and indexer scores are fp32
LOGIT_BYTES = FP32_BYTES
#: FP8 (E4M3) activations and cache entries
FP8_BYTES = 1
#: int32 token indices (the indexer's top-k)
INDEX_BYTES = 4
#: storage bytes per weight element, block scales included
WEIGHT_BYTES: dict[str, float] = {
    "nvfp4": (4 + 8 / 16) / 8,  # E2M1 + one E4M3 scale per 16 values = 4.5 bits
    "mxfp4": (4 + 8 / 32) / 8,  # E2M1 + one E8M0 scale per 32 values = 4.25 bits (OCP MX)
    "fp8": 1 + 4 / (128 * 128),  # E4M3 + one FP32 scale per 128x128 block
    "bf16": 2.0,
    "fp32": 4.0,
}
