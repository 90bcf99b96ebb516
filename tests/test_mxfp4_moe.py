"""vLLM's MXFP4 expert kernels: padded shapes, padded weight memory and TRT-LLM-gen's row tile, by hand."""

from __future__ import annotations

import pytest

from perfsim.costs.kernels import KernelCoster
from perfsim.costs.memory import memory_plan
from perfsim.costs.mxfp4_moe import ExpertTiling, expert_tiling, routed_expert_dims
from perfsim.costs.params import CostParams
from perfsim.costs.roofline import gemm_efficiency
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.hardware import load_hardware
from perfsim.specs.model import load_model


@pytest.mark.parametrize(
    ("hw", "slice_", "want"),
    [
        ("b200", 2880, (3072, 3072)),  # TP1: both to multiples of 256
        ("h200", 2880, (3072, 2944)),  # Marlin: hidden to 256, the slice to 128
        ("b200", 360, (3072, 512)),  # TP8
        ("h200", 360, (3072, 384)),
        ("b200", 720, (3072, 768)),  # TP4: 720 -> 768 on both
        ("h200", 720, (3072, 768)),
    ],
)
def test_mxfp4_experts_are_padded_as_vllm_pads_them(hw, slice_, want):
    assert routed_expert_dims("mxfp4", load_hardware(hw), 2880, slice_) == want


def test_other_expert_precisions_are_not_padded():
    assert routed_expert_dims("nvfp4", load_hardware("b200"), 2880, 360) == (2880, 360)


def test_padded_experts_take_their_padded_weight_memory():
    """gpt-oss-120b at TP4 on B200: the routed experts' share grows by (3072 x 768) / (2880 x 720)."""
    model = load_model("gpt-oss-120b")
    hw = load_hardware("b200")
    dep = resolve_deployment(Deployment(), model, hw, 4)
    experts = next(w for w in memory_plan(model, hw, dep).weights if w.module == "routed_experts")
    logical = model.arch.num_moe_layers * model.arch.moe.num_experts * model.arch.expert_params / 4
    assert experts.params_per_gpu == pytest.approx(logical * 3072 * 768 / (2880 * 720), rel=1e-12)


def test_trtllm_tile_charges_a_full_tile_above_the_small_one():
    tiling = ExpertTiling(min_rows=128)
    assert [tiling.compute_rows(r) for r in (1, 16, 24, 25, 32, 100, 128, 300)] == [
        1,
        16,
        24,
        128,
        128,
        128,
        128,
        300,
    ]
    b200, h200 = load_hardware("b200"), load_hardware("h200")
    assert expert_tiling("mxfp4", b200, CostParams()) == tiling
    assert expert_tiling("mxfp4", h200, CostParams()) is None  # Marlin: the rows as they are
    assert expert_tiling("nvfp4", b200, CostParams()) is None


def test_tiled_grouped_gemm_costs_the_tile_rows_by_hand():
    """32 experts with 32 rows each on a 256-row tile cost 2 x 32 x 256 x n x k flops at the 256-row efficiency."""
    hw = load_hardware("b200")
    params = CostParams(gemm_mem_serial=0.0)
    k = KernelCoster(hw, params, mxfp4_compute="fp8")
    n, kk, experts = 6144, 3072, 32
    tiling = ExpertTiling(min_rows=256)
    tiled = k.grouped_gemm("g", 1, 32 * experts, experts, n, kk, "mxfp4", tiling=tiling)
    eff = gemm_efficiency(256, n, kk, params.gemm_eff_fp8, params.gemm_m_half_tokens, params.gemm_nk_half)
    assert tiled.bound == "compute"
    assert tiled.time_s == pytest.approx(2 * experts * 256 * n * kk / (hw.peak_flops("fp8") * eff), rel=1e-12)
    assert tiled.flops == 2 * 32 * experts * n * kk  # the work done is the real rows'
    small = k.grouped_gemm("g", 1, 16 * experts, experts, n, kk, "mxfp4", tiling=tiling)
    assert small.time_s == k.grouped_gemm("g", 1, 16 * experts, experts, n, kk, "mxfp4").time_s


def test_a_hopper_mxfp4_deployment_says_which_kernel_path_it_costs():
    gpt_oss = load_model("gpt-oss-120b", "mxfp4")
    notes = {
        hw: resolve_deployment(Deployment(), gpt_oss, load_hardware(hw), 2).notes for hw in ("h200", "b200")
    }
    assert any("VLLM_MXFP4_USE_MARLIN=1" in n for n in notes["h200"])
    assert not any("Marlin" in n for n in notes["b200"])
