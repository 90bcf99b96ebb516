"""The time of one vLLM engine step for a batch, composed from the operator families, on each GPU.

``StepCostModel(model, hw, deployment, params).step(batch)`` costs one step of a DeepSeek-family forward
pass per GPU: the embedding, per decoder layer the residual norms, the attention block of the model's
attention family (``perfsim.costs.attention``), a dense MLP or MoE block (``dense``, ``moe``, with the
all-to-all backend of ``all2all``), then logits and sampling (``sampling``) and the MTP drafter
(``mtp``). Kernel-boundary gaps, eager launches by CUDA-graph mode and CPU time come from ``overheads``.

Operators that depend only on token counts are cached by shape (``step_cache``); attention cores depend on
contexts and are costed every step. DP ranks step in lockstep padded to the largest rank; the slowest rank
sets the step. Nothing here knows about SimPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perfsim.costs.attention import attention_family
from perfsim.costs.batch import EMPTY, BatchStats, batch_stats
from perfsim.costs.dbo import DEEPEP_HT_SMS, overlapped_part
from perfsim.costs.decode_block import decode_block_profile
from perfsim.costs.dense import DenseLayers
from perfsim.costs.generations import spec_params
from perfsim.costs.interface import DecodeBlockProfile, StepCost, StepProfile
from perfsim.costs.kernels import CostContext
from perfsim.costs.moe import MoEBlock
from perfsim.costs.mtp import MTPDrafter
from perfsim.costs.overheads import cpu_launches, cpu_step_s, exposed_worker_s, step_period_s
from perfsim.costs.params import CostParams
from perfsim.costs.roofline import OpTime
from perfsim.costs.sampling import Sampling
from perfsim.costs.step_cache import StaticPart, cache_put, kernel_counts, shared_static_cache, static_part
from perfsim.specs.attention import decode_query_threshold
from perfsim.specs.cudagraphs import CudaGraphPolicy
from perfsim.specs.deployment import ResolvedDeployment
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model


@dataclass(slots=True)
class RankTime:
    """One DP rank's step: period, GPU, launch, engine CPU, exposed worker CPU and kernel-boundary seconds, and its
    operators."""

    total_s: float
    gpu_s: float
    launch_s: float
    cpu_s: float
    sync_s: float
    overhead_s: float
    static: StaticPart
    dynamic: tuple[OpTime, ...]


@dataclass(slots=True)
class _Lockstep:
    """The slowest rank of a lockstep step, with the step's graph mode and padded token count."""

    rank: int
    time: RankTime
    padded_tokens: int
    graph_mode: str


class StepCostModel:
    """Cost of engine steps for one model, GPU kind, deployment and set of cost parameters."""

    def __init__(
        self, model: Model, hw: HardwareSpec, dep: ResolvedDeployment, params: CostParams | None = None
    ):
        self.model, self.hw, self._dep = model, hw, dep
        self.params = params or spec_params(hw.generation)
        self.ctx = CostContext.build(model, hw, dep, self.params)
        self.attention = attention_family(self.ctx)
        self.dense = DenseLayers(self.ctx)
        self.moe = MoEBlock(self.ctx)
        self.sampling = Sampling(self.ctx)
        self.graphs = CudaGraphPolicy.build(
            dep.cudagraph_mode, dep.max_cudagraph_capture_size, dep.num_speculative_tokens
        )
        self.decode_threshold = decode_query_threshold(dep.attention_backend, dep.num_speculative_tokens)
        self._cache = shared_static_cache(model, hw, dep, self.params)
        self.drafter = (
            MTPDrafter(
                self.ctx,
                self.attention,
                self.dense,
                self.moe,
                self.sampling,
                self._cache,
                self.decode_threshold,
            )
            if dep.num_speculative_tokens
            else None
        )

    @property
    def dep(self) -> ResolvedDeployment:
        """The deployment whose steps are costed."""
        return self._dep

    # ---- public API -----------------------------------------------------------------------------
    def stats(self, new_tokens, context_tokens) -> BatchStats:
        """Batch statistics with this deployment's decode threshold and sparse top-k."""
        return batch_stats(
            new_tokens,
            context_tokens,
            decode_threshold=self.decode_threshold,
            topk=self.attention.sparse_topk,
        )

    def step(self, ranks: BatchStats | Sequence[BatchStats]) -> StepCost:
        """Cost of one step; ``ranks`` holds one batch per DP rank (idle ranks: an empty batch)."""
        batches = self._per_rank(ranks)
        slowest = self._slowest_rank(batches)
        r, b = slowest.time, batches[slowest.rank]
        return StepCost(
            total_s=r.total_s,
            gpu_s=r.gpu_s,
            launch_s=r.launch_s,
            cpu_s=r.cpu_s,
            sync_s=r.sync_s,
            overhead_s=r.overhead_s,
            ops=r.static.ops + r.dynamic,
            num_tokens=b.num_tokens,
            padded_tokens=slowest.padded_tokens,
            num_reqs=b.num_reqs,
            graph_mode=slowest.graph_mode,
        )

    def step_time(self, ranks: BatchStats | Sequence[BatchStats]) -> float:
        """Seconds of one step (the scheduler's step period)."""
        return self.step(ranks).total_s

    def step_profile(self, ranks: Sequence[BatchStats]) -> StepProfile:
        """Fast path for the simulator: period, GPU seconds and GPU seconds by category of the slowest rank."""
        slowest = self._slowest_rank(ranks)
        r = slowest.time
        by_category = dict(r.static.by_category_s)
        for o in r.dynamic:
            by_category[o.category] = by_category.get(o.category, 0.0) + o.time_s
        by_category["overhead"] = by_category.get("overhead", 0.0) + r.overhead_s
        forward_s = max(r.gpu_s, r.launch_s)
        signature = (
            slowest.rank,
            r.gpu_s >= r.launch_s,
            forward_s >= r.cpu_s,
            tuple(o.bound for o in r.dynamic),
            r.static.ops[-1].bound if r.static.ops and r.static.ops[-1].name == "dbo_overlap" else "",
        )
        return StepProfile(total_s=r.total_s, gpu_s=r.gpu_s, by_category_s=by_category, signature=signature)

    def decode_block_profile(self, contexts: Sequence[np.ndarray], steps: int) -> DecodeBlockProfile:
        """``steps`` identical one-token decode steps; ``contexts`` per DP rank (see ``decode_block``)."""
        return decode_block_profile(
            self.step_profile, self.stats, contexts, steps, self.attention.context_breakpoints
        )

    def gemm_cost(self, m: int, n: int, k: int, weight_dtype: str = "bf16") -> OpTime:
        """One (m x k) @ (k x n) GEMM with ``weight_dtype`` weights on this GPU (for studies and checks)."""
        return self.ctx.kernels.gemm("gemm", "gemm", 1, m, n, k, weight_dtype)

    # ---- one rank -----------------------------------------------------------------------------------
    def _per_rank(self, ranks: BatchStats | Sequence[BatchStats]) -> list[BatchStats]:
        batches = [ranks] if isinstance(ranks, BatchStats) else list(ranks)
        if len(batches) != self.dep.dp:
            batches = batches + [EMPTY] * (self.dep.dp - len(batches))
        return batches

    def _static(self, tokens: int, padded: int, moe_tokens: int, rows: int) -> StaticPart:
        """Operators that depend only on token counts (projections, MLP/MoE, logits), cached by shape."""
        key_tokens = tokens if self.attention.static_uses_unpadded_tokens else padded
        key = ("step", key_tokens, padded, moe_tokens, rows)
        part = self._cache.get(key)
        if part is None:
            arch = self.model.arch
            n_dense, n_moe, n_layers = arch.num_dense_layers, arch.num_moe_layers, arch.num_layers
            ops = (
                self.dense.embedding_ops(padded)
                + self.dense.norm_ops(padded, n_layers)
                + self.attention.static_ops(tokens, padded, n_layers, mtp=False)
                + self.dense.mlp_ops(padded, n_dense, mtp=False)
                + self.moe.ops(padded, moe_tokens, n_moe, mtp=False)
                + self.sampling.logits_ops(rows, "lm_head", self.model.recipe.dtype("lm_head"))
            )
            if self.dep.num_speculative_tokens:
                drafts = rows // (1 + self.dep.num_speculative_tokens) * self.dep.num_speculative_tokens
                ops += self.sampling.rejection_ops(drafts)
            part = static_part(ops)
            cache_put(self._cache, key, part)
        return part

    def _rank_time(
        self, b: BatchStats, padded: int, moe_tokens: int, graph: str, *, ubatch: bool = False
    ) -> RankTime:
        """One rank's step: its cached count-only part, its attention cores and drafter, and the overheads
        (``ubatch``: as two dual-batch-overlap micro-batches)."""
        dep, p = self.dep, self.params
        n_layers = self.model.arch.num_layers
        rows = max(b.num_reqs, 1) * (1 + dep.num_speculative_tokens)
        dynamic = self.attention.core_ops(b, n_layers, mtp=False)
        if ubatch:
            static = self._overlapped(b, padded, moe_tokens, rows, sum(o.time_s for o in dynamic))
        else:
            static = self._static(b.num_tokens, padded, moe_tokens, rows)
        counts = static.counts + kernel_counts(dynamic)
        kernels, launches = counts.kernels, cpu_launches(graph, counts, n_layers)
        if self.drafter is not None:
            draft = self.drafter.cost(b, padded)
            dynamic += draft.ops
            kernels += draft.kernels
            launches += draft.launches
        overhead = kernels * p.kernel_gap_s
        gpu = static.time_s + sum(o.time_s for o in dynamic) + overhead
        launch = launches * p.launch_overhead_s
        cpu = cpu_step_s(p, b.num_reqs)
        # a dense-MLA prefill chunk copies metadata to the host, MTP waits for accepted counts: the worker's
        # per-request CPU time is then not hidden behind the GPU
        synchronizes = self.drafter is not None or (b.pre_tokens > 0 and self.attention.prefill_syncs_host)
        sync = exposed_worker_s(p, b.num_reqs, synchronizes)
        return RankTime(
            total_s=step_period_s(gpu, launch, cpu, dep.async_scheduling) + sync,
            gpu_s=gpu,
            launch_s=launch,
            cpu_s=cpu,
            sync_s=sync,
            overhead_s=overhead,
            static=static,
            dynamic=tuple(dynamic),
        )

    def _overlapped(
        self, b: BatchStats, padded: int, moe_tokens: int, rows: int, dynamic_s: float
    ) -> StaticPart:
        """The count-only part of a dual-batch-overlap step: both halves, less what the overlap hides."""
        first, first_rows = padded // 2, rows // 2
        halves = (
            self._static(min(b.num_tokens, first), first, moe_tokens // 2, max(first_rows, 1)),
            self._static(
                max(b.num_tokens - first, 0),
                padded - first,
                moe_tokens - moe_tokens // 2,
                max(rows - first_rows, 1),
            ),
        )
        sms = self.hw.sm_count_value
        slowdown = (
            sms / (sms - DEEPEP_HT_SMS) if self.dep.all2all_backend == "deepep_high_throughput" else 1.0
        )
        return overlapped_part(halves, dynamic_s, self.model.arch.num_moe_layers, slowdown)

    def _ubatches(self, ranks: Sequence[BatchStats]) -> bool:
        """Whether vLLM splits this lockstep step into two micro-batches: DBO on and every rank at its threshold."""
        if not self.dep.enable_dbo:
            return False
        decode_only, with_prefill = self.dep.dbo_thresholds
        return all(b.num_tokens >= (with_prefill if b.pre_tokens else decode_only) for b in ranks)

    def _slowest_rank(self, ranks: Sequence[BatchStats]) -> _Lockstep:
        """The slowest DP rank of a lockstep step: all ranks pad to the largest rank's tokens."""
        t_max = max(max(b.num_tokens for b in ranks), 1)
        uniform = all(b.is_uniform_decode or b.num_tokens == 0 for b in ranks)
        graph, padded = self.graphs.for_step(t_max, uniform)
        moe_tokens = padded * self.dep.dp
        ubatch = self._ubatches(ranks)
        slowest: RankTime | None = None
        slowest_rank = 0
        for r, b in enumerate(ranks):
            time = self._rank_time(b, padded, moe_tokens, graph, ubatch=ubatch)
            if slowest is None or time.total_s > slowest.total_s:
                slowest, slowest_rank = time, r
        assert slowest is not None
        return _Lockstep(rank=slowest_rank, time=slowest, padded_tokens=padded, graph_mode=graph)
