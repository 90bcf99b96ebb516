"""Time kernels on the current device: HBM copy, GEMMs, grouped GEMMs, attention, all-reduce.

GPU path (PyTorch, CUDA): CUDA events around each of ``repeats`` runs after ``warmup`` runs, the median
reported; inputs are fresh random tensors. FP8 GEMMs use ``torch._scaled_mm`` where the GPU supports it; FP4
GEMMs where PyTorch exposes them for the GPU (Blackwell), otherwise they are skipped with a note. Grouped
GEMMs use ``torch._grouped_mm`` when available, else a loop of per-group matmuls (a documented fallback that
includes launch gaps). Attention uses PyTorch's scaled-dot-product attention (flash backend) as the
available proxy for vLLM's MLA kernels. All-reduce runs over NCCL when more than one GPU is visible.

CPU path (``device='cpu'``, numpy): the same kernel kinds at tiny shapes in fp32, timed with
``time.perf_counter`` - to exercise collect -> file -> fit -> validate anywhere (CI has no GPU).
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from functools import partial

import numpy as np

from perfsim.collect.cuda_kernels import collect_cuda
from perfsim.collect.schema import KernelRow
from perfsim.collect.timing import kernel_row, median_time
from perfsim.errors import PerfsimError


class CollectError(PerfsimError):
    """The device or the software needed for ``perfsim collect`` is missing."""


def collect(
    device: str = "cuda",
    *,
    quick: bool = False,
    ops: list[str] | None = None,
    repeats: int | None = None,
    warmup: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[KernelRow]:
    """Measure kernels on ``device`` ('cuda' or 'cpu'); ``quick`` uses a few small shapes."""
    ops = ops or ["hbm_copy", "gemm", "grouped_gemm", "attention", "all_reduce"]
    say = progress or (lambda _msg: None)
    if device == "cpu":
        return _collect_cpu(ops, repeats or 5, warmup or 1, say)
    if device != "cuda":
        raise CollectError(f"--device {device}: allowed: cuda, cpu")
    try:
        import torch
    except ImportError:
        raise CollectError(
            "perfsim collect --device cuda needs PyTorch: pip install 'perfsim[collect]' "
            "(or use --device cpu --quick to test the pipeline)"
        ) from None
    if not torch.cuda.is_available():
        raise CollectError(
            "no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False); "
            "use --device cpu --quick to test the pipeline"
        )
    return collect_cuda(torch, ops, quick, repeats or (10 if quick else 30), warmup or 3, say)


# ---- CPU (numpy) ------------------------------------------------------------------------------------------


def _collect_cpu(ops, repeats, warmup, say) -> list[KernelRow]:
    ident = {
        "gpu_name": f"cpu ({platform.processor() or platform.machine()})",
        "driver": "none",
        "cuda": "none",
        "torch": "none",
        "backend": f"numpy-{np.__version__}",
    }
    rng = np.random.default_rng(0)
    rows: list[KernelRow] = []
    timed = dict(repeats=repeats, warmup=warmup, timer="cpu")
    if "hbm_copy" in ops:
        for mib in (4, 16, 32):
            src = rng.standard_normal(mib * 2**20 // 4).astype(np.float32)
            dst = np.empty_like(src)
            t = median_time(partial(np.copyto, dst, src), **timed)
            rows.append(kernel_row(ident, "hbm_copy", "fp32", t, 0.0, 2.0 * src.nbytes, repeats, warmup))
            say(rows[-1].label)
    if "gemm" in ops:
        for m, n, k in ((8, 256, 256), (64, 256, 512), (128, 512, 256), (256, 512, 512), (32, 128, 1024)):
            a = rng.standard_normal((m, k)).astype(np.float32)
            b = rng.standard_normal((k, n)).astype(np.float32)
            t = median_time(partial(np.matmul, a, b), **timed)
            rows.append(
                kernel_row(
                    ident,
                    "gemm",
                    "fp32",
                    t,
                    2.0 * m * n * k,
                    4.0 * (m * k + n * k + m * n),
                    repeats,
                    warmup,
                    m=m,
                    n=n,
                    k=k,
                )
            )
            say(rows[-1].label)
    if "grouped_gemm" in ops:
        groups, m_per, n, k = 8, 32, 256, 256
        a = rng.standard_normal((groups, m_per, k)).astype(np.float32)
        w = rng.standard_normal((groups, k, n)).astype(np.float32)
        t = median_time(lambda: np.matmul(a, w), **timed)
        rows.append(
            kernel_row(
                ident,
                "grouped_gemm",
                "fp32",
                t,
                2.0 * groups * m_per * n * k,
                4.0 * groups * (m_per * k + k * n + m_per * n),
                repeats,
                warmup,
                m=m_per,
                n=n,
                k=k,
                groups=groups,
            )
        )
        say(rows[-1].label)
    if "attention" in ops:
        for batch, h, sq, skv, d in ((1, 4, 64, 64, 32), (8, 4, 1, 256, 32)):
            q = rng.standard_normal((batch, h, sq, d)).astype(np.float32)
            kk = rng.standard_normal((batch, h, skv, d)).astype(np.float32)
            v = rng.standard_normal((batch, h, skv, d)).astype(np.float32)

            def attn(q=q, kk=kk, v=v, d=d):
                s = q @ kk.swapaxes(-1, -2) / np.sqrt(d)
                s = np.exp(s - s.max(axis=-1, keepdims=True))
                return (s / s.sum(axis=-1, keepdims=True)) @ v

            t = median_time(attn, **timed)
            pairs = batch * h * sq * skv
            rows.append(
                kernel_row(
                    ident,
                    "attention",
                    "fp32",
                    t,
                    4.0 * d * pairs,
                    4.0 * batch * h * (2 * sq + 2 * skv) * d,
                    repeats,
                    warmup,
                    batch=batch,
                    heads=h,
                    seq_q=sq,
                    seq_kv=skv,
                    head_dim=d,
                    causal=0,
                )
            )
            say(rows[-1].label)
    return rows
