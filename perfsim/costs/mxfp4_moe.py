"""vLLM's MXFP4 expert kernels: the padded expert shapes they run and the row tiles TRT-LLM-gen's MoE pays for.

vLLM 0.13.0 pads MXFP4 experts at load time to what its kernel needs [quantization/mxfp4.py:278-333]: on
Blackwell (FlashInfer's TRT-LLM-gen MXFP4 x MXFP8 or x BF16 kernels) the hidden size and each GPU's slice of
the intermediate size to multiples of 256; on Hopper (Marlin W4A16, as ``VLLM_MXFP4_USE_MARLIN=1`` selects) the
hidden size to 256 and the slice to 128. gpt-oss-120b's 2,880 becomes 3,072 on both; at TP8 its 360-wide slice
becomes 512 on Blackwell and 384 on Hopper. The padded weights are streamed, dequantized and multiplied.

TRT-LLM-gen's MoE GEMMs pick their row tile from the rows per expert: up to a few dozen rows a small tile,
above that a 128-row one, so an expert with 32 rows costs what one with 128 does. FlashInfer PR 5301's B200
table of the TRT-LLM-gen FP4 MoE (256 experts, top-8) shows it: 0.17 ms at 512 tokens (16 rows per expert),
0.29 ms at 1,024 (32 rows) and 0.31 ms at 4,096 (128 rows).
"""

from __future__ import annotations

from dataclasses import dataclass

from perfsim.costs.params import CostParams
from perfsim.specs.deployment import ResolvedDeployment
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model
from perfsim.specs.moe_kernels import mxfp4_moe_backend

#: (hidden, intermediate-slice) alignment of vLLM 0.13.0's MXFP4 MoE backends [quantization/mxfp4.py:278-320]
PAD_ALIGN = {"trtllm": (256, 256), "marlin": (256, 128)}
#: rows per expert up to which TRT-LLM-gen's MoE runs a small row tile: between the 16 and 32 rows of FlashInfer PR
#: 5301's B200 table, where the time steps up to that of 128 rows
SMALL_TILE_MAX_ROWS = 24.0


def _round_up(value: int, align: int) -> int:
    return -(-value // align) * align


def routed_expert_dims(
    weight_dtype: str, hw: HardwareSpec, hidden: int, intermediate: int
) -> tuple[int, int]:
    """(hidden, intermediate slice) of one routed expert on one GPU as its kernel runs it (padded for MXFP4)."""
    if weight_dtype != "mxfp4":
        return hidden, intermediate
    h_align, i_align = PAD_ALIGN[mxfp4_moe_backend(hw)]
    return _round_up(hidden, h_align), _round_up(intermediate, i_align)


def routed_expert_param_scale(weight_dtype: str, hw: HardwareSpec, hidden: int, intermediate: int) -> float:
    """Padded over logical weights of one routed expert's slice (1.0 where nothing is padded)."""
    if intermediate <= 0:
        return 1.0
    h_pad, i_pad = routed_expert_dims(weight_dtype, hw, hidden, intermediate)
    return h_pad * i_pad / (hidden * intermediate)


@dataclass(frozen=True)
class ExpertTiling:
    """The row tile of a grouped MoE GEMM: an expert with more than ``small_tile_max_rows`` rows costs at least
    ``min_rows`` rows of tensor-core work."""

    min_rows: float
    small_tile_max_rows: float = SMALL_TILE_MAX_ROWS

    def compute_rows(self, rows_per_expert: float) -> float:
        """Rows per expert whose tensor-core time the kernel takes for ``rows_per_expert`` real rows."""
        if rows_per_expert <= self.small_tile_max_rows:
            return rows_per_expert
        return max(rows_per_expert, self.min_rows)


def expert_tiling(weight_dtype: str, hw: HardwareSpec, params: CostParams) -> ExpertTiling | None:
    """The row tiling of the routed experts' kernel: TRT-LLM-gen's for MXFP4 on Blackwell, else None (the rows
    as they are)."""
    if weight_dtype != "mxfp4" or mxfp4_moe_backend(hw) != "trtllm":
        return None
    return ExpertTiling(min_rows=params.trtllm_fp4_moe_min_rows)


def expert_padding(model: Model, hw: HardwareSpec, dep: ResolvedDeployment) -> float:
    """Padded over logical weights of ``model``'s routed experts on one GPU of ``dep`` (1.0 without MXFP4)."""
    moe = model.arch.moe
    if moe is None:
        return 1.0
    intermediate = dep.expert_slice(moe.intermediate_size)
    weight_dtype = model.recipe.dtype("routed_experts")
    return routed_expert_param_scale(weight_dtype, hw, model.arch.hidden_size, intermediate)
