"""The time of one vLLM engine step for a batch, broken down by operator, on each GPU.

``StepCostModel(model, hw, deployment, params).step(batch)`` counts, per GPU, the flops, HBM bytes and
link bytes of every operator of a DeepSeek-family forward pass (MLA or DeepSeek Sparse Attention,
dense MLP or MoE, tensor / data / expert parallel communication, lm_head and sampling, the MTP draft)
and turns them into time with a roofline per operator (``perfsim.costs.roofline``), kernel-boundary
and launch overheads that depend on the CUDA-graph mode, and the CPU time of the step.

The model mirrors vLLM 0.14.1: the fused q_a/kv_a projection and the V3.2 indexer are replicated on
every TP rank; dense MLA prefill expands the latent KV with kv_b (context included), decode uses the
absorbed 576-wide form; FLASHMLA_SPARSE runs every token in absorbed form over at most index_topk keys,
padding prefill heads to 128 on Blackwell (64 on Hopper) when a rank holds fewer; DP ranks step in
lockstep padded to the largest rank. Nothing here knows about SimPy.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from perfsim.costs.batch import EMPTY, BatchStats, batch_stats, uniform_decode_stats
from perfsim.costs.comm import all_gather, all_reduce, group_link, reduce_scatter
from perfsim.costs.params import CostParams
from perfsim.costs.roofline import OpTime, achievable_bandwidth, gemm_efficiency, roofline
from perfsim.specs.attention import BACKENDS
from perfsim.specs.deployment import ResolvedDeployment, indexer_key_bytes, mla_entry_bytes
from perfsim.specs.dtypes import ACT_BYTES, FP32_BYTES, INDEX_BYTES, WEIGHT_BYTES
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model

LOGIT_BYTES = FP32_BYTES  # logits and indexer scores are fp32
FP8_BYTES = 1


#: Passes over a [tokens, hidden] BF16 tensor per decoder layer by its two fused add + RMSNorm kernels, each
#: reading hidden and residual and writing both (RoPE touches only small q/k slices; the KV write is its own op).
HIDDEN_PASSES_PER_LAYER = 8
#: Kernels per decoder layer (for kernel-boundary gaps). The V3.2 attention path issued about 33 kernels
#: per layer before vLLM's 2026 fusion work (vLLM blog, 2026-05-11); MLA about 12; an MoE block ~12.
KERNELS_ATTENTION_MLA = 12
KERNELS_ATTENTION_DSA = 33
KERNELS_DENSE_MLP = 5
KERNELS_MOE = 12
#: Kernels outside the decoder layers: embedding, final norm, lm_head, logits gather, sampler, input prep.
KERNELS_OUTSIDE_LAYERS = 6
#: Extra kernels of an MTP drafter pass besides its layer: the two input norms, concat, eh_proj, shared-head norm,
#: draft sampling, and the hidden-state / position bookkeeping between passes.
KERNELS_MTP_EXTRA = 8
#: Kernels launched eagerly between piecewise CUDA-graph pieces (the attention custom ops).
EAGER_KERNELS_MLA = 6
EAGER_KERNELS_DSA = 20
#: Piecewise CUDA graphs split each layer around the attention op: two graph replays per layer.
GRAPH_PIECES_PER_LAYER = 2
#: Step shapes kept per cost-model spec set before the cache is cleared (a shape is a few kB).
STATIC_CACHE_MAX_SHAPES = 4096
#: FlashMLA sparse prefill pads local heads to this many on SM100 (64 on Hopper) [flashmla_sparse.py:722];
#: ranks with fewer than 32 heads and an FP8 cache run everything through the decode kernel instead.
SPARSE_PREFILL_HEAD_PADDING_BLACKWELL = 128
SPARSE_PREFILL_HEAD_PADDING_HOPPER = 64
MIN_HEADS_FOR_SPARSE_PREFILL_KERNEL = 32
#: passes over [rows, vocab] fp32 logits in the sampler (cast, greedy argmax / top-k)
SAMPLER_LOGIT_PASSES = 3


@dataclass(frozen=True)
class StepCost:
    """Time of one engine step (seconds) and its breakdown on the slowest GPU.

    ``total_s`` is the step period the scheduler sees: the GPU forward (``gpu_s``, or the CPU launch time
    ``launch_s`` if larger) combined with the step's CPU time ``cpu_s`` (overlapped with async scheduling).
    ``ops`` are per-operator times on the slowest DP rank, summed over layers.
    """

    total_s: float
    gpu_s: float
    launch_s: float
    cpu_s: float
    overhead_s: float  # kernel-boundary gaps included in gpu_s
    ops: tuple[OpTime, ...]
    num_tokens: int
    padded_tokens: int
    num_reqs: int
    graph_mode: str
    notes: tuple[str, ...] = field(default=())

    @property
    def flops(self) -> float:
        """Total flops of the slowest rank."""
        return sum(o.flops for o in self.ops)

    @property
    def bytes(self) -> float:
        """Total HBM bytes of the slowest rank."""
        return sum(o.bytes for o in self.ops)

    def by_category(self) -> dict[str, float]:
        """Seconds per operator category (attention, moe, dense, comm, ...), plus overheads."""
        out: dict[str, float] = {}
        for o in self.ops:
            out[o.category] = out.get(o.category, 0.0) + o.time_s
        out["overhead"] = out.get("overhead", 0.0) + self.overhead_s
        return out

    def by_bound(self) -> dict[str, float]:
        """Seconds per bound (compute, memory, sfu, communication, overhead)."""
        out: dict[str, float] = {"overhead": self.overhead_s}
        for o in self.ops:
            out[o.bound] = out.get(o.bound, 0.0) + o.time_s
        return out

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        return {
            "total_s": self.total_s,
            "gpu_s": self.gpu_s,
            "launch_s": self.launch_s,
            "cpu_s": self.cpu_s,
            "overhead_s": self.overhead_s,
            "num_tokens": self.num_tokens,
            "padded_tokens": self.padded_tokens,
            "num_reqs": self.num_reqs,
            "graph_mode": self.graph_mode,
            "flops": self.flops,
            "bytes": self.bytes,
            "by_category_s": self.by_category(),
            "by_bound_s": self.by_bound(),
            "ops": [o.to_dict() for o in self.ops],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class _StaticPart:
    """Cached operators of a step that depend only on its token counts."""

    ops: tuple[OpTime, ...]
    time_s: float
    kernels: int
    eager: int
    categories: dict[str, float]


def _as_mtp(op: OpTime) -> OpTime:
    """The same operator, filed under the MTP drafter."""
    return dataclasses.replace(
        op, name=op.name if op.name.startswith("mtp") else "mtp_" + op.name, category="mtp"
    )


def _scaled(op: OpTime, times: int) -> OpTime:
    """``times`` identical runs of an operator as one entry."""
    return dataclasses.replace(
        op,
        time_s=op.time_s * times,
        flops=op.flops * times,
        bytes=op.bytes * times,
        comm_bytes=op.comm_bytes * times,
    )


#: Static-part caches shared by every StepCostModel built from equal specs, so that the points of a sweep
#: (same deployment, other workloads) reuse each other's step shapes. Bounded: least recently used dropped.
_SHARED_STATIC: OrderedDict[str, dict[tuple, _StaticPart]] = OrderedDict()
_SHARED_STATIC_MAX = 8


def _shared_static_cache(
    model: Model, hw: HardwareSpec, dep: ResolvedDeployment, params: CostParams
) -> dict[tuple, _StaticPart]:
    key = "\n".join((repr(model), hw.model_dump_json(), repr(dep), params.model_dump_json()))
    cache = _SHARED_STATIC.get(key)
    if cache is None:
        cache = _SHARED_STATIC[key] = {}
        while len(_SHARED_STATIC) > _SHARED_STATIC_MAX:
            _SHARED_STATIC.popitem(last=False)
    else:
        _SHARED_STATIC.move_to_end(key)
    return cache


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


class StepCostModel:
    """Cost of engine steps for one model, GPU kind, deployment and set of cost parameters."""

    def __init__(
        self, model: Model, hw: HardwareSpec, dep: ResolvedDeployment, params: CostParams | None = None
    ):
        self.model, self.hw, self.dep = model, hw, dep
        self.params = params or CostParams()
        p, arch = self.params, model.arch
        self.h = arch.hidden_size
        self.heads = arch.mla.num_heads // dep.tp
        self.bw = hw.hbm_bandwidth_Bps * p.hbm_eff
        self.sfu = hw.sfu_exp_rate.si("exp_rate") if hw.sfu_exp_rate else 0.0
        self.eff = {"nvfp4": p.gemm_eff_nvfp4, "fp8": p.gemm_eff_fp8, "bf16": p.gemm_eff_bf16}
        self.peak = {d: hw.peak_flops(d) or 0.0 for d in ("nvfp4", "fp8", "bf16")}
        # skinny GEMMs (a few rows) run as CUDA-core GEMV / split-K kernels, not on wasted tensor tiles
        self.vector_flops = (hw.peak_flops("fp32") or 0.0) * p.gemm_eff_bf16
        self.latent_entry_bytes = mla_entry_bytes(model, dep.kv_cache_dtype)
        self.tp_link = group_link(hw, dep.tp, p)
        self.moe_link = group_link(hw, dep.tp * dep.dp, p)
        spec_graphs = dep.cudagraph_mode == "FULL_AND_PIECEWISE" and dep.num_speculative_tokens
        multiple_of = 1 + dep.num_speculative_tokens if spec_graphs else 1
        self.sizes = (
            capture_sizes(dep.max_cudagraph_capture_size, multiple_of) if dep.cudagraph_mode != "NONE" else []
        )
        spec_as_decode = BACKENDS[dep.attention_backend].spec_as_decode
        self.decode_threshold = 1 + dep.num_speculative_tokens if spec_as_decode else 1
        self.topk = arch.indexer.topk if arch.indexer else None
        self.kernels_attention = KERNELS_ATTENTION_DSA if self.topk else KERNELS_ATTENTION_MLA
        self.sparse_padding = (
            SPARSE_PREFILL_HEAD_PADDING_BLACKWELL if hw.is_blackwell else SPARSE_PREFILL_HEAD_PADDING_HOPPER
        )
        self._static_cache = _shared_static_cache(model, hw, dep, self.params)

    # ---- public API -----------------------------------------------------------------------------
    def stats(self, new_tokens, context_tokens) -> BatchStats:
        """Batch statistics with this deployment's decode threshold and sparse top-k."""
        return batch_stats(new_tokens, context_tokens, decode_threshold=self.decode_threshold, topk=self.topk)

    def step(self, ranks: BatchStats | Sequence[BatchStats]) -> StepCost:
        """Cost of one step; ``ranks`` holds one batch per DP rank (idle ranks: an empty batch)."""
        batches = [ranks] if isinstance(ranks, BatchStats) else list(ranks)
        if len(batches) != self.dep.dp:
            batches = batches + [EMPTY] * (self.dep.dp - len(batches))
        rank, (total, gpu, launch, cpu, overhead, static, dynamic), padded, graph = self._slowest_rank(
            batches
        )
        b = batches[rank]
        return StepCost(
            total,
            gpu,
            launch,
            cpu,
            overhead,
            static.ops + tuple(dynamic),
            b.num_tokens,
            padded,
            b.num_reqs,
            graph,
        )

    def step_time(self, ranks: BatchStats | Sequence[BatchStats]) -> float:
        """Seconds of one step (the scheduler's step period)."""
        return self.step(ranks).total_s

    def gemm_cost(self, m: int, n: int, k: int, weight_dtype: str = "bf16") -> OpTime:
        """One (m x k) @ (k x n) GEMM with ``weight_dtype`` weights on this GPU (for studies and checks)."""
        return self._gemm("gemm", "gemm", 1, m, n, k, weight_dtype)

    # ---- graph mode and padding -------------------------------------------------------------------
    def _graph_mode(self, tokens: int, uniform_decode: bool) -> tuple[str, int]:
        mode = self.dep.cudagraph_mode
        if mode == "NONE" or tokens > (self.sizes[-1] if self.sizes else 0):
            return "NONE", tokens
        padded = self.sizes[bisect.bisect_left(self.sizes, tokens)]
        if mode == "FULL_AND_PIECEWISE" and uniform_decode:
            return "FULL", padded
        return "PIECEWISE", padded

    # ---- operator helpers -------------------------------------------------------------------------
    def _compute_dtype(self, weight_dtype: str) -> str:
        if weight_dtype in ("nvfp4", "fp8") and self.peak[weight_dtype]:
            return weight_dtype
        return "bf16"  # weight-only (Marlin) or BF16 weights

    @staticmethod
    def _act_in_bytes(compute_dtype: str) -> float:
        """Bytes per input activation: W4A4 / W8A8 kernels read activations quantized by a previous kernel."""
        return WEIGHT_BYTES[compute_dtype] if compute_dtype in ("nvfp4", "fp8") else ACT_BYTES

    def _gemm(
        self, name: str, category: str, layers: int, m: float, n: float, k: float, wdtype: str
    ) -> OpTime:
        """An (m x k) @ (k x n) GEMM with ``wdtype`` weights: one expert's grouped GEMM."""
        return self._grouped_gemm(name, layers, m, 1, n, k, wdtype, category)

    def _grouped_gemm(
        self,
        name: str,
        layers: int,
        assignments: float,
        experts: float,
        n: float,
        k: float,
        wdtype: str,
        category: str = "moe",
    ) -> OpTime:
        """``assignments`` token rows spread over ``experts`` (n x k) weight matrices, each read once."""
        cd = self._compute_dtype(wdtype)
        rows_per_expert = assignments / experts if experts else 0.0
        eff = gemm_efficiency(
            rows_per_expert, n, k, self.eff[cd], self.params.gemm_m_half_tokens, self.params.gemm_nk_half
        )
        flops = 2.0 * assignments * n * k
        nbytes = experts * n * k * WEIGHT_BYTES[wdtype] + assignments * (
            k * self._act_in_bytes(cd) + n * ACT_BYTES
        )
        t, bound = roofline(flops, max(self.peak[cd] * eff, self.vector_flops), nbytes, self._bw(nbytes))
        return OpTime(name, category, layers, t * layers, flops * layers, nbytes * layers, 0.0, bound, cd)

    def _bw(self, nbytes: float) -> float:
        """Achievable bandwidth (B/s) of one kernel moving ``nbytes``."""
        return achievable_bandwidth(self.bw, nbytes, self.params.mem_bytes_half)

    def _memory_op(self, name: str, category: str, layers: int, nbytes: float) -> OpTime:
        t = nbytes / self._bw(nbytes) if nbytes > 0 else 0.0
        return OpTime(name, category, layers, t * layers, 0.0, nbytes * layers, 0.0, "memory")

    def _attention_op(
        self,
        name: str,
        layers: int,
        flops: float,
        nbytes: float,
        exps: float,
        eff: float,
        dtype: str = "bf16",
        category: str = "attention",
    ) -> OpTime:
        t, bound = roofline(flops, self.peak[dtype] * eff, nbytes, self._bw(nbytes), exps, self.sfu)
        return OpTime(name, category, layers, t * layers, flops * layers, nbytes * layers, 0.0, bound, dtype)

    @staticmethod
    def _comm_op(name: str, layers: int, time_and_bytes: tuple[float, float]) -> OpTime:
        t, sent = time_and_bytes
        return OpTime(name, "comm", layers, t * layers, 0.0, 0.0, sent * layers, "communication")

    # ---- one rank -----------------------------------------------------------------------------------
    def _static(self, tokens: int, padded: int, moe_tokens: int, rows: int, graph: str) -> _StaticPart:
        """Operators that depend only on token counts (projections, MLP/MoE, logits), cached by shape."""
        key = ("step", tokens if self.topk else padded, padded, moe_tokens, rows, graph)
        part = self._static_cache.get(key)
        if part is None:
            arch = self.model.arch
            n_dense, n_moe, n_layers = arch.num_dense_layers, arch.num_moe_layers, arch.num_layers
            ops = (
                self._embedding_ops(padded)
                + self._attention_static_ops(tokens, padded, n_layers, mtp=False)
                + self._dense_mlp_ops(padded, n_dense, mtp=False)
                + self._moe_ops(padded, moe_tokens, n_moe, mtp=False)
                + self._logits_ops(rows, "lm_head", self.model.recipe.dtype("lm_head"))
            )
            kernels = n_layers * self.kernels_attention
            kernels += n_dense * KERNELS_DENSE_MLP + n_moe * KERNELS_MOE + KERNELS_OUTSIDE_LAYERS
            eager = self._eager_kernels(graph, kernels, n_layers)
            categories: dict[str, float] = {}
            for o in ops:
                categories[o.category] = categories.get(o.category, 0.0) + o.time_s
            part = _StaticPart(tuple(ops), sum(o.time_s for o in ops), kernels, eager, categories)
            self._cache_put(key, part)
        return part

    def _cache_put(self, key: tuple, part: _StaticPart) -> None:
        if len(self._static_cache) >= STATIC_CACHE_MAX_SHAPES:
            self._static_cache.clear()
        self._static_cache[key] = part

    def _dynamic_ops(self, b: BatchStats, padded: int, rows: int) -> tuple[list[OpTime], int, int]:
        """Operators that depend on contexts (attention cores, indexer scores) and the MTP draft."""
        ops = self._attention_core_ops(b, self.model.arch.num_layers, mtp=False)
        kernels = eager = 0
        if self.dep.num_speculative_tokens:
            draft_ops, kernels, eager = self._mtp_draft_ops(b, padded, rows)
            ops += draft_ops
        return ops, kernels, eager

    def _rank_times(
        self, b: BatchStats, padded: int, moe_tokens: int, graph: str
    ) -> tuple[float, float, float, float, float, _StaticPart, list[OpTime]]:
        """(total, gpu, launch, cpu, overhead) seconds of one rank's step, with its static and dynamic parts."""
        dep, p = self.dep, self.params
        rows = max(b.num_reqs, 1) * (1 + dep.num_speculative_tokens)
        static = self._static(b.num_tokens, padded, moe_tokens, rows, graph)
        dynamic, kernels, eager = self._dynamic_ops(b, padded, rows)
        overhead = (static.kernels + kernels) * p.kernel_gap_s
        gpu = static.time_s + sum(o.time_s for o in dynamic) + overhead
        launch = (static.eager + eager) * p.launch_overhead_s
        cpu = p.cpu_step_s + p.cpu_per_request_s * b.num_reqs
        forward = gpu if gpu > launch else launch
        total = (forward if forward > cpu else cpu) if dep.async_scheduling else forward + cpu
        return total, gpu, launch, cpu, overhead, static, dynamic

    def _slowest_rank(self, ranks: Sequence[BatchStats]) -> tuple[int, tuple, int, str]:
        """(rank, its _rank_times, padded tokens, graph mode) of the slowest DP rank: all ranks pad alike."""
        t_max = max(max(b.num_tokens for b in ranks), 1)
        uniform = all(b.is_uniform_decode or b.num_tokens == 0 for b in ranks)
        graph, padded = self._graph_mode(t_max, uniform)
        moe_tokens = padded * self.dep.dp
        best, worst_rank = None, 0
        for r, b in enumerate(ranks):
            times = self._rank_times(b, padded, moe_tokens, graph)
            if best is None or times[0] > best[0]:
                best, worst_rank = times, r
        assert best is not None
        return worst_rank, best, padded, graph

    def step_profile(self, ranks: Sequence[BatchStats]) -> tuple[float, float, dict[str, float]]:
        """Fast path for the simulator: (step seconds, GPU seconds, GPU seconds by category) of the slowest rank."""
        total, gpu, categories, _signature = self._profile(ranks)
        return total, gpu, categories

    def _profile(self, ranks: Sequence[BatchStats]) -> tuple[float, float, dict[str, float], tuple]:
        worst_rank, best, _padded, _graph = self._slowest_rank(ranks)
        total, gpu, launch, cpu, overhead, static, dynamic = best
        categories = dict(static.categories)
        for o in dynamic:
            categories[o.category] = categories.get(o.category, 0.0) + o.time_s
        categories["overhead"] = categories.get("overhead", 0.0) + overhead
        signature = (worst_rank, gpu >= launch, max(gpu, launch) >= cpu, tuple(o.bound for o in dynamic))
        return total, gpu, categories, signature

    def decode_block_profile(
        self, contexts: Sequence[np.ndarray], steps: int
    ) -> tuple[np.ndarray, float, dict[str, float]]:
        """Step times (s) of ``steps`` identical one-token decode steps whose contexts grow by one per step.

        ``contexts`` holds, per DP rank, the context of each decoding request before the first step.
        Within such a block every operator's work is linear in the step index, so when no operator changes
        its bound and no request crosses the sparse top-k cap, the times are exactly linear and two cost
        evaluations suffice; otherwise every step is costed. Returns (times, GPU seconds, seconds by
        category scaled to step time), the last two summed over the block.
        """
        ones = [np.ones(c.size, dtype=np.int64) for c in contexts]

        def at(j: int):
            return self._profile([self.stats(o, c + j) for o, c in zip(ones, contexts, strict=True)])

        first = at(0)
        last = at(steps - 1)
        linear = first[3] == last[3]
        if linear and self.topk:
            for c in contexts:
                if np.any((c + 1 < self.topk) & (c + steps > self.topk)):
                    linear = False
                    break
        if linear:
            times = np.linspace(first[0], last[0], steps)
            ends = (first, last)
            weight = steps / 2
        else:
            profiles = [at(j) for j in range(steps)]
            times = np.array([pr[0] for pr in profiles])
            ends = tuple(profiles)
            weight = 1.0
        gpu = 0.0
        categories: dict[str, float] = {}
        for total, g, cats, _sig in ends:
            gpu += g * weight
            scale = total / (g or 1.0) * weight
            for k, v in cats.items():
                categories[k] = categories.get(k, 0.0) + v * scale
        return times, gpu, categories

    def _eager_kernels(self, graph: str, kernels: int, layers: int) -> int:
        if graph == "FULL":
            return 1
        if graph == "PIECEWISE":
            per_layer = EAGER_KERNELS_DSA if self.topk else EAGER_KERNELS_MLA
            return layers * (per_layer + GRAPH_PIECES_PER_LAYER)
        return kernels

    # ---- operator groups ------------------------------------------------------------------------------
    def _embedding_ops(self, t: int) -> list[OpTime]:
        ops = [self._memory_op("embedding", "other", 1, t * self.h * ACT_BYTES * 2)]
        if self.dep.tp > 1:  # VocabParallelEmbedding masks and all-reduces
            ops.append(
                self._comm_op(
                    "embedding_allreduce", 1, all_reduce(t * self.h * ACT_BYTES, self.dep.tp, self.tp_link)
                )
            )
        return ops

    def _attention_static_ops(self, tokens: int, t: int, layers: int, *, mtp: bool) -> list[OpTime]:
        """Projections, norms, KV writes and the TP all-reduce of the attention block (``t`` padded tokens)."""
        arch, rec = self.model.arch, self.model.recipe
        m, h, heads = arch.mla, self.h, self.heads

        def dt(c: str) -> str:
            return rec.dtype(c, mtp=mtp)

        q_in = m.q_lora_rank or h
        ops = [
            self._memory_op("norms_rope", "other", layers, HIDDEN_PASSES_PER_LAYER * t * h * ACT_BYTES),
            self._gemm(
                "attn_qkv_a_proj",
                "attention_proj",
                layers,
                t,
                (m.q_lora_rank or 0) + m.latent_dim,
                h,
                dt("q_a"),
            ),
            self._gemm("attn_q_b_proj", "attention_proj", layers, t, heads * m.qk_head_dim, q_in, dt("q_b")),
            self._memory_op(
                "kv_cache_write",
                "attention",
                layers,
                t * (m.latent_dim * ACT_BYTES + self.latent_entry_bytes),
            ),
        ]
        if self.topk:
            ops += self._indexer_proj_ops(t, layers, q_in, dt("indexer"))
            ops += self._absorb_ops(tokens, layers)  # sparse attention absorbs every token
        ops.append(
            self._gemm("attn_o_proj", "attention_proj", layers, t, h, heads * m.v_head_dim, dt("o_proj"))
        )
        if self.dep.tp > 1:
            ops.append(
                self._comm_op(
                    "attn_allreduce", layers, all_reduce(t * h * ACT_BYTES, self.dep.tp, self.tp_link)
                )
            )
        return ops

    def _attention_core_ops(self, b: BatchStats, layers: int, *, mtp: bool) -> list[OpTime]:
        """Context-dependent attention work: dense MLA prefill/decode, or indexer scores + sparse attention."""
        if self.topk:
            return self._indexer_score_ops(b, layers) + self._sparse_attention_ops(b, layers)
        return self._dense_mla_ops(b, layers, self.model.recipe.dtype("kv_b", mtp=mtp))

    def _attention_ops(self, b: BatchStats, t: int, layers: int, *, mtp: bool) -> list[OpTime]:
        """The whole attention block (static and context-dependent parts)."""
        return self._attention_static_ops(b.num_tokens, t, layers, mtp=mtp) + self._attention_core_ops(
            b, layers, mtp=mtp
        )

    def _absorb_ops(self, tokens: int, layers: int) -> list[OpTime]:
        """W_UK and W_UV batched matmuls of the absorbed form (BF16 copies of kv_b), per query token."""
        m = self.model.arch.mla
        if tokens <= 0:
            return []
        return [
            self._gemm(
                "attn_absorb_w_uk",
                "attention",
                layers,
                tokens,
                self.heads * m.kv_lora_rank,
                m.qk_nope_head_dim,
                "bf16",
            ),
            self._gemm(
                "attn_absorb_w_uv",
                "attention",
                layers,
                tokens,
                self.heads * m.v_head_dim,
                m.kv_lora_rank,
                "bf16",
            ),
        ]

    def _dense_mla_ops(self, b: BatchStats, layers: int, kv_b_dtype: str) -> list[OpTime]:
        m, p, heads = self.model.arch.mla, self.params, self.heads
        ops: list[OpTime] = []
        if b.pre_tokens:
            # non-absorbed (MHA) prefill: expand the latent of context + new tokens with kv_b
            ops.append(
                self._gemm(
                    "attn_kv_b_expand",
                    "attention",
                    layers,
                    b.pre_kv_tokens,
                    heads * (m.qk_nope_head_dim + m.v_head_dim),
                    m.kv_lora_rank,
                    kv_b_dtype,
                )
            )
            if b.pre_ctx_tokens:
                ops.append(
                    self._memory_op(
                        "attn_context_gather",
                        "attention",
                        layers,
                        b.pre_ctx_tokens * (self.latent_entry_bytes + m.latent_dim * ACT_BYTES),
                    )
                )
            flops = 2.0 * heads * (m.qk_head_dim + m.v_head_dim) * b.pre_pairs
            nbytes = (
                b.pre_tokens * heads * (m.qk_head_dim + m.v_head_dim) * ACT_BYTES
                + b.pre_kv_tokens * heads * (m.qk_head_dim + m.v_head_dim) * ACT_BYTES
            )
            ops.append(
                self._attention_op(
                    "attn_prefill_mha", layers, flops, nbytes, heads * b.pre_pairs, p.attn_prefill_eff
                )
            )
        if b.dec_tokens:
            ops += self._absorb_ops(b.dec_tokens, layers)
            flops = 2.0 * heads * (m.latent_dim + m.kv_lora_rank) * b.dec_pairs
            nbytes = (
                b.dec_kv_tokens * self.latent_entry_bytes
                + b.dec_tokens * heads * m.latent_dim * ACT_BYTES * 2
            )
            ops.append(
                self._attention_op(
                    "attn_decode_mla", layers, flops, nbytes, heads * b.dec_pairs, p.attn_decode_eff
                )
            )
        return ops

    def _indexer_proj_ops(self, t: int, layers: int, q_in: int, dtype: str) -> list[OpTime]:
        """Indexer projections (replicated on every TP rank) and the FP8 quantization / key-cache write."""
        ix, h = self.model.arch.indexer, self.h
        assert ix is not None
        return [
            self._gemm("indexer_wq_b", "indexer", layers, t, ix.num_heads * ix.head_dim, q_in, dtype),
            self._gemm("indexer_wk", "indexer", layers, t, ix.head_dim, h, dtype),
            self._gemm("indexer_weights_proj", "indexer", layers, t, ix.num_heads, h, "bf16"),
            self._memory_op(
                "indexer_quant_cache",
                "indexer",
                layers,
                t
                * (
                    ix.num_heads * ix.head_dim * (ACT_BYTES + FP8_BYTES)
                    + ix.head_dim * ACT_BYTES
                    + indexer_key_bytes(ix)
                ),
            ),
        ]

    def _indexer_score_ops(self, b: BatchStats, layers: int) -> list[OpTime]:
        """FP8 MQA logits of every query against its causal keys, then the per-row top-k."""
        ix, p = self.model.arch.indexer, self.params
        assert ix is not None
        pairs = b.pairs
        logits_flops = 2.0 * ix.num_heads * ix.head_dim * pairs
        logits_bytes = (
            b.kv_tokens * indexer_key_bytes(ix)
            + pairs * LOGIT_BYTES
            + b.num_tokens * ix.num_heads * ix.head_dim
        )
        logits_dtype = "fp8" if self.peak["fp8"] else "bf16"  # Ampere-class GPUs run the FP8 logits in BF16
        topk_bytes = pairs * LOGIT_BYTES + b.num_tokens * ix.topk * INDEX_BYTES
        t_topk = topk_bytes / (self.hw.hbm_bandwidth_Bps * p.topk_eff)
        return [
            self._attention_op(
                "indexer_logits",
                layers,
                logits_flops,
                logits_bytes,
                0.0,
                p.indexer_eff,
                logits_dtype,
                category="indexer",
            ),
            OpTime(
                "indexer_topk", "indexer", layers, t_topk * layers, 0.0, topk_bytes * layers, 0.0, "memory"
            ),
        ]

    def _sparse_attention_ops(self, b: BatchStats, layers: int) -> list[OpTime]:
        m, p, heads = self.model.arch.mla, self.params, self.heads
        per_pair = 2.0 * (m.latent_dim + m.kv_lora_rank)
        ops: list[OpTime] = []
        fp8_cache = self.dep.kv_cache_dtype == "fp8_ds_mla"
        if fp8_cache and heads < MIN_HEADS_FOR_SPARSE_PREFILL_KERNEL:
            # "mixed batch" mode: every token through the FP8 sparse decode kernel, no head padding
            dec_pairs, dec_tokens, pre_pairs = b.sparse_pairs, b.num_tokens, 0
        elif fp8_cache:
            dec_pairs, dec_tokens, pre_pairs = b.dec_sparse_pairs, b.dec_tokens, b.pre_sparse_pairs
        else:  # BF16 cache: every token through the (padded) sparse prefill kernel
            dec_pairs, dec_tokens, pre_pairs = 0, 0, b.sparse_pairs
        if dec_tokens:
            nbytes = dec_pairs * self.latent_entry_bytes + dec_tokens * heads * m.latent_dim * ACT_BYTES * 2
            ops.append(
                self._attention_op(
                    "sparse_attn_decode",
                    layers,
                    per_pair * heads * dec_pairs,
                    nbytes,
                    heads * dec_pairs,
                    p.sparse_attn_eff,
                )
            )
        if pre_pairs > 0:
            padded_heads = heads if heads >= self.sparse_padding else self.sparse_padding
            kv_tokens = b.pre_kv_tokens if fp8_cache else b.kv_tokens
            # FP8 entries are gathered and up-converted to a BF16 workspace, then read by the kernel
            nbytes = kv_tokens * (self.latent_entry_bytes + 2 * m.latent_dim * ACT_BYTES)
            ops.append(
                self._attention_op(
                    "sparse_attn_prefill",
                    layers,
                    per_pair * padded_heads * pre_pairs,
                    nbytes,
                    padded_heads * pre_pairs,
                    p.sparse_attn_eff,
                )
            )
        return ops

    def _dense_mlp_ops(self, t: int, layers: int, *, mtp: bool) -> list[OpTime]:
        if layers == 0:
            return []
        arch, dep = self.model.arch, self.dep
        inter = arch.dense_intermediate_size // dep.tp
        dt = self.model.recipe.dtype("dense_mlp", mtp=mtp)
        ops = [
            self._gemm("dense_gate_up", "dense_mlp", layers, t, 2 * inter, self.h, dt),
            self._memory_op("dense_act", "dense_mlp", layers, t * inter * ACT_BYTES * 3),
            self._gemm("dense_down", "dense_mlp", layers, t, self.h, inter, dt),
        ]
        if dep.tp > 1:
            ops.append(
                self._comm_op(
                    "dense_allreduce", layers, all_reduce(t * self.h * ACT_BYTES, dep.tp, self.tp_link)
                )
            )
        return ops

    def _moe_ops(self, t: int, moe_tokens: int, layers: int, *, mtp: bool) -> list[OpTime]:
        if layers == 0:
            return []
        arch, dep, p, rec = self.model.arch, self.dep, self.params, self.model.recipe
        moe, h = arch.moe, self.h
        ops = [self._gemm("moe_router", "moe", layers, t, moe.num_experts, h, "bf16")]
        if moe.num_shared_experts:
            shared_inter = moe.num_shared_experts * moe.intermediate_size // dep.tp
            sdt = rec.dtype("shared_expert", mtp=mtp)
            ops += [
                self._gemm("shared_gate_up", "moe", layers, t, 2 * shared_inter, h, sdt),
                self._memory_op("shared_act", "moe", layers, t * shared_inter * ACT_BYTES * 3),
                self._gemm("shared_down", "moe", layers, t, h, shared_inter, sdt),
            ]
        # routed experts: tokens from every DP rank meet the experts of this GPU
        if dep.ep > 1:
            local_experts = moe.num_experts / dep.ep
            inter = moe.intermediate_size
            imbalance = 1.0 + p.ep_imbalance * (1 - 1 / dep.ep)
            assignments = moe_tokens * moe.top_k / dep.ep * imbalance
        else:
            local_experts = moe.num_experts
            inter = moe.intermediate_size // dep.moe_tp
            assignments = moe_tokens * moe.top_k
        p_pick = moe.top_k / moe.num_experts
        active = local_experts * (1.0 - (1.0 - p_pick) ** moe_tokens)
        rdt = rec.dtype("routed_experts", mtp=mtp)
        a_in = self._act_in_bytes(self._compute_dtype(rdt))
        ops += [
            # quantize the layer input once, then write one (quantized) copy per routed assignment
            self._memory_op(
                "moe_permute_quant",
                "moe",
                layers,
                moe_tokens * h * (ACT_BYTES + a_in) + assignments * h * a_in,
            ),
            self._grouped_gemm("moe_gate_up", layers, assignments, active, 2 * inter, h, rdt),
            self._memory_op("moe_act", "moe", layers, assignments * inter * ACT_BYTES * 3),
            self._grouped_gemm("moe_down", layers, assignments, active, h, inter, rdt),
            self._memory_op(
                "moe_finalize", "moe", layers, assignments * h * ACT_BYTES + moe_tokens * h * ACT_BYTES
            ),
        ]
        if dep.dp > 1:  # vLLM's allgather_reducescatter backend over the DP group
            ops.append(
                self._comm_op(
                    "moe_dispatch_allgather",
                    layers,
                    all_gather(moe_tokens * h * ACT_BYTES, dep.dp, self.moe_link),
                )
            )
            ops.append(
                self._comm_op(
                    "moe_combine_reducescatter",
                    layers,
                    reduce_scatter(moe_tokens * h * ACT_BYTES, dep.dp, self.moe_link),
                )
            )
        if dep.tp > 1:
            ops.append(
                self._comm_op("moe_allreduce", layers, all_reduce(t * h * ACT_BYTES, dep.tp, self.tp_link))
            )
        return ops

    def _logits_ops(self, rows: int, name: str, dtype: str) -> list[OpTime]:
        arch, dep = self.model.arch, self.dep
        vocab_local = arch.vocab_size / dep.tp
        ops = [
            self._memory_op("final_norm", "other", 1, rows * self.h * ACT_BYTES * 2),
            self._gemm(name, "logits", 1, rows, vocab_local, self.h, dtype),
        ]
        if dep.tp > 1:
            ops.append(
                self._comm_op(
                    f"{name}_allgather",
                    1,
                    all_gather(rows * arch.vocab_size * ACT_BYTES, dep.tp, self.tp_link),
                )
            )
        ops.append(
            self._memory_op(
                "sampler", "logits", 1, rows * arch.vocab_size * LOGIT_BYTES * SAMPLER_LOGIT_PASSES
            )
        )
        return ops

    def _mtp_draft_ops(self, b: BatchStats, t: int, rows: int) -> tuple[list[OpTime], int, int]:
        """The MTP drafter: one pass over the step's tokens, then k-1 one-token passes per request.

        Each pass is a cached count-only part plus its attention core; the k-1 one-token passes are
        identical, so one is costed and scaled.
        """
        k = self.dep.num_speculative_tokens
        reqs = max(b.num_reqs, 1)
        first = self._mtp_static(b.num_tokens, t, reqs)
        ops = list(first.ops) + [_as_mtp(o) for o in self._attention_core_ops(b, 1, mtp=True)]
        kernels, eager = first.kernels, first.eager
        if k > 1:
            one = uniform_decode_stats(
                reqs, b.max_seq_len, decode_threshold=self.decode_threshold, topk=self.topk
            )
            rest = self._mtp_static(reqs, reqs, reqs)
            ops += [
                _scaled(_as_mtp(o), k - 1)
                for o in rest.ops + tuple(self._attention_core_ops(one, 1, mtp=True))
            ]
            kernels += rest.kernels * (k - 1)
            eager += rest.eager * (k - 1)
        return ops, kernels, eager

    def _mtp_static(self, tokens: int, t: int, rows: int) -> _StaticPart:
        """Count-only operators of one drafter pass over ``t`` padded tokens sampling ``rows`` rows (cached)."""
        key = ("mtp", tokens, t, rows)
        part = self._static_cache.get(key)
        if part is None:
            ops = [self._gemm("mtp_eh_proj", "mtp", 1, t, self.h, 2 * self.h, "bf16")]
            ops += [
                _as_mtp(o)
                for o in (
                    self._attention_static_ops(tokens, t, 1, mtp=True)
                    + self._moe_ops(t, t * self.dep.dp, 1, mtp=True)
                    + self._logits_ops(rows, "mtp_lm_head", "bf16")
                )
            ]
            kernels = self.kernels_attention + KERNELS_MOE + KERNELS_MTP_EXTRA
            # the V3.2 drafter runs eagerly in vLLM 0.14.1; an MLA drafter keeps its graph pieces
            eager = kernels if self.topk else kernels // 2
            part = _StaticPart(
                tuple(ops), sum(o.time_s for o in ops), kernels, eager, {"mtp": sum(o.time_s for o in ops)}
            )
            self._cache_put(key, part)
        return part
