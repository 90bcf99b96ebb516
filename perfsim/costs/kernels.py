"""Kernel-level costing shared by every operator family: GEMMs, streaming kernels, attention, collectives.

``KernelCoster`` binds the roofline (``perfsim.costs.roofline``) to one GPU and one set of cost parameters:
each method turns the work of one kernel (flops, HBM bytes, exponentials, link bytes) into an ``OpTime``
summed over the layers it runs in. ``CostContext`` is what an operator family is built from.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfsim.costs.comm import Link, group_link
from perfsim.costs.comm.allreduce import allreduce_algorithm, allreduce_time
from perfsim.costs.mxfp4_moe import ExpertTiling
from perfsim.costs.params import CostParams
from perfsim.costs.roofline import OpTime, achievable_bandwidth, gemm_efficiency, roofline
from perfsim.specs.deployment import ResolvedDeployment
from perfsim.specs.dtypes import ACT_BYTES, WEIGHT_BYTES
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model

#: weight precisions whose tensor cores also take quantized activations (W4A4 / W8A8)
LOW_PRECISION_COMPUTE = ("nvfp4", "fp8")


class KernelCoster:
    """Roofline time of single kernels on one GPU kind with one set of efficiencies."""

    def __init__(self, hw: HardwareSpec, params: CostParams, *, mxfp4_compute: str = "bf16"):
        """``mxfp4_compute``: the tensor-core precision MXFP4 weights run at ('fp8' with MXFP8 activations on
        Blackwell, else 'bf16': weight-only)."""
        self.hw, self.params = hw, params
        self.mxfp4_compute = mxfp4_compute
        self.hbm_Bps = hw.hbm_bandwidth_Bps * params.hbm_eff
        #: bytes at which a streaming kernel reaches half its bandwidth: its fixed ramp-up time at full speed
        self.ramp_bytes = params.mem_ramp_s * self.hbm_Bps
        self.sfu_rate = hw.sfu_exp_rate.si("exp_rate") if hw.sfu_exp_rate else 0.0
        self.gemm_eff = {
            "nvfp4": params.gemm_eff_nvfp4,
            "fp8": params.gemm_eff_fp8,
            "bf16": params.gemm_eff_bf16,
        }
        self.peak = {d: hw.peak_flops(d) or 0.0 for d in ("nvfp4", "fp8", "bf16")}
        # skinny GEMMs (a few rows) run as CUDA-core GEMV / split-K kernels, not on wasted tensor tiles
        self.vector_flops = (hw.peak_flops("fp32") or 0.0) * params.gemm_eff_bf16
        clock_hz = hw.boost_clock.si("frequency") if hw.boost_clock else 0.0
        #: weights per second a weight-only kernel dequantizes (0: not limited)
        self.dequant_weights_per_s = params.weight_dequant_per_sm_cycle * hw.sm_count_value * clock_hz

    def compute_dtype(self, weight_dtype: str) -> str:
        """The tensor-core precision a GEMM with ``weight_dtype`` weights runs in on this GPU."""
        if weight_dtype == "mxfp4":
            return self.mxfp4_compute if self.peak.get(self.mxfp4_compute) else "bf16"
        if weight_dtype in LOW_PRECISION_COMPUTE and self.peak[weight_dtype]:
            return weight_dtype
        return "bf16"  # weight-only (Marlin) or BF16 weights

    @staticmethod
    def weight_only(weight_dtype: str, compute_dtype: str) -> bool:
        """Whether a GEMM dequantizes its weights to a wider compute precision in its main loop (W4A16)."""
        return compute_dtype == "bf16" and WEIGHT_BYTES[weight_dtype] < ACT_BYTES

    def dequant_time(self, weights: float, weight_dtype: str, compute_dtype: str) -> float:
        """Seconds a weight-only GEMM spends dequantizing ``weights`` on the CUDA cores (0 where not limited)."""
        if not self.weight_only(weight_dtype, compute_dtype) or not self.dequant_weights_per_s:
            return 0.0
        return weights / self.dequant_weights_per_s

    @staticmethod
    def activation_in_bytes(compute_dtype: str) -> float:
        """Bytes per input activation: W4A4 / W8A8 kernels read activations quantized by a previous kernel."""
        return WEIGHT_BYTES[compute_dtype] if compute_dtype in LOW_PRECISION_COMPUTE else ACT_BYTES

    def bandwidth(self, nbytes: float) -> float:
        """Achievable bandwidth (B/s) of one kernel moving ``nbytes``: the stream plus a fixed ramp-up time."""
        return achievable_bandwidth(self.hbm_Bps, nbytes, self.ramp_bytes)

    def gemm(
        self,
        name: str,
        category: str,
        layers: int,
        m: float,
        n: float,
        k: float,
        weight_dtype: str,
        *,
        quantized_input: bool = False,
        launch: str = "graph",
    ) -> OpTime:
        """An (m x k) @ (k x n) GEMM with ``weight_dtype`` weights: one expert's grouped GEMM.

        A W4A4 / W8A8 GEMM first quantizes its input in a kernel of its own unless ``quantized_input`` says the
        previous kernel wrote it quantized.
        """
        return self.grouped_gemm(
            name, layers, m, 1, n, k, weight_dtype, category, quantized_input=quantized_input, launch=launch
        )

    def grouped_gemm(
        self,
        name: str,
        layers: int,
        assignments: float,
        experts: float,
        n: float,
        k: float,
        weight_dtype: str,
        category: str = "moe",
        *,
        quantized_input: bool = True,
        launch: str = "graph",
        tiling: ExpertTiling | None = None,
    ) -> OpTime:
        """``assignments`` token rows spread over ``experts`` (n x k) weight matrices, each read once.

        Grouped GEMMs read inputs that the permute kernel quantized (``quantized_input``); a plain GEMM with
        low-precision compute adds its own quantization kernel otherwise. ``tiling``: the kernel's row tile,
        which sets the rows of tensor-core work each expert costs (the rows as they are without one).
        """
        p = self.params
        cd = self.compute_dtype(weight_dtype)
        rows_per_expert = assignments / experts if experts else 0.0
        flops = 2.0 * assignments * n * k
        compute_flops = flops
        if tiling is not None:
            rows_per_expert = tiling.compute_rows(rows_per_expert)
            compute_flops = 2.0 * experts * rows_per_expert * n * k
        peak_fraction = p.gemm_eff_weight_only if self.weight_only(weight_dtype, cd) else self.gemm_eff[cd]
        eff = gemm_efficiency(rows_per_expert, n, k, peak_fraction, p.gemm_m_half_tokens, p.gemm_nk_half)
        nbytes = experts * n * k * WEIGHT_BYTES[weight_dtype] + assignments * (
            k * self.activation_in_bytes(cd) + n * ACT_BYTES
        )
        t, bound = roofline(
            compute_flops,
            max(self.peak[cd] * eff, self.vector_flops),
            nbytes,
            self.bandwidth(nbytes),
            mem_serial=p.gemm_mem_serial,
        )
        t_dequant = self.dequant_time(experts * n * k, weight_dtype, cd)
        if t_dequant > t:
            t, bound = t_dequant, "dequant"
        if self.weight_only(weight_dtype, cd):
            t += p.weight_only_gemm_latency_s
        return OpTime(
            name=name,
            category=category,
            layers=layers,
            time_s=t * layers,
            flops=flops * layers,
            bytes=nbytes * layers,
            comm_bytes=0.0,
            bound=bound,
            dtype=cd,
            kernels=1 if quantized_input or cd not in LOW_PRECISION_COMPUTE else 2,
            launch=launch,
        )

    def memory_op(
        self, name: str, category: str, layers: int, nbytes: float, *, kernels: int = 1, launch: str = "graph"
    ) -> OpTime:
        """``kernels`` streaming kernels moving ``nbytes`` per layer (norms, activations, copies, cache writes)."""
        t = nbytes / self.bandwidth(nbytes / kernels) if nbytes > 0 and kernels else 0.0
        return OpTime(
            name=name,
            category=category,
            layers=layers,
            time_s=t * layers,
            flops=0.0,
            bytes=nbytes * layers,
            comm_bytes=0.0,
            bound="memory",
            kernels=kernels,
            launch=launch,
        )

    def attention_op(
        self,
        name: str,
        layers: int,
        flops: float,
        nbytes: float,
        exps: float,
        eff: float,
        dtype: str = "bf16",
        category: str = "attention",
        *,
        kernels: int = 1,
        launch: str = "attention",
    ) -> OpTime:
        """An attention kernel: tensor-core flops at ``eff`` of peak, HBM bytes and ``exps`` softmax exponentials;
        ``kernels`` launches per layer (a split-KV decode adds its combine kernel)."""
        t, bound = roofline(
            flops,
            self.peak[dtype] * eff,
            nbytes,
            self.bandwidth(nbytes),
            exps,
            self.sfu_rate,
            exp_serial=self.params.attn_exp_serial,
        )
        return OpTime(
            name=name,
            category=category,
            layers=layers,
            time_s=t * layers,
            flops=flops * layers,
            bytes=nbytes * layers,
            comm_bytes=0.0,
            bound=bound,
            dtype=dtype,
            kernels=kernels,
            launch=launch,
        )

    @staticmethod
    def comm_op(
        name: str,
        layers: int,
        time_and_bytes: tuple[float, float],
        *,
        kernels: int = 1,
        launch: str = "graph",
    ) -> OpTime:
        """A collective of ``(seconds, bytes sent per GPU)`` per layer."""
        t, sent = time_and_bytes
        return OpTime(
            name=name,
            category="comm",
            layers=layers,
            time_s=t * layers,
            flops=0.0,
            bytes=0.0,
            comm_bytes=sent * layers,
            bound="communication",
            kernels=kernels,
            launch=launch,
        )


@dataclass(frozen=True)
class CostContext:
    """Everything an operator family is built from: the specs, the parameters, the kernel coster and links.

    ``tp_link`` carries the tensor-parallel group's collectives, ``moe_link`` those of the expert group
    (all TP x DP GPUs of an instance).
    """

    model: Model
    hw: HardwareSpec
    dep: ResolvedDeployment
    params: CostParams
    kernels: KernelCoster
    tp_link: Link
    moe_link: Link

    @classmethod
    def build(
        cls, model: Model, hw: HardwareSpec, dep: ResolvedDeployment, params: CostParams
    ) -> CostContext:
        """The context of one deployment of ``model`` on ``hw``."""
        return cls(
            model=model,
            hw=hw,
            dep=dep,
            params=params,
            kernels=KernelCoster(hw, params, mxfp4_compute=dep.mxfp4_compute),
            tp_link=group_link(hw, dep.tp, params),
            moe_link=group_link(hw, dep.tp * dep.dp, params),
        )

    @property
    def hidden(self) -> int:
        """The model's hidden size."""
        return self.model.arch.hidden_size

    def tp_allreduce(self, name: str, layers: int, message_bytes: float) -> OpTime:
        """The tensor-parallel all-reduce of ``message_bytes`` per layer with the implementation vLLM 0.14.1 picks
        for its size; symmetric memory adds its copy into and out of the shared buffer (two HBM passes)."""
        tp, p = self.dep.tp, self.params
        algorithm = allreduce_algorithm(
            self.hw.compute_capability, tp, message_bytes, one_node=tp <= self.hw.node_gpus
        )
        t, sent = allreduce_time(
            algorithm,
            message_bytes,
            tp,
            self.tp_link,
            custom_latency_s=p.custom_ar_latency_s,
            nccl_latency_s=p.nccl_latency_s,
        )
        kernels = 1
        if algorithm.startswith("symm") and t:
            t += 2 * message_bytes / self.kernels.bandwidth(message_bytes)
            kernels = 3
        return self.kernels.comm_op(name, layers, (t, sent), kernels=kernels)
