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
import statistics
import subprocess
import time
from collections.abc import Callable

import numpy as np

from perfsim.collect.schema import KernelRow
from perfsim.errors import PerfsimError

#: DeepSeek-V3 (N, K) projection shapes per GPU at TP1 / TP2: fused q_a+kv_a, q_b, o_proj, expert
#: gate_up and down (TP1), dense MLP down, and a vocab slice of lm_head
DEEPSEEK_NK = [
    (2112, 7168),
    (24576, 1536),
    (7168, 16384),
    (4096, 7168),
    (7168, 2048),
    (7168, 9216),
    (16160, 7168),
]
TOKENS = [1, 16, 64, 256, 1024, 4096, 16384]


class CollectError(PerfsimError):
    """The device or the software needed for ``perfsim collect`` is missing."""


def _median_time(fn: Callable[[], object], repeats: int, warmup: int, timer: str, sync=None) -> float:
    for _ in range(warmup):
        fn()
    if timer == "cuda":
        import torch

        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000.0)
        return statistics.median(times)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _row(
    ident: dict,
    op: str,
    dtype: str,
    seconds: float,
    flops: float,
    nbytes: float,
    repeats: int,
    warmup: int,
    **shape,
) -> KernelRow:
    return KernelRow(
        **ident,
        op=op,
        dtype=dtype,
        flops=flops,
        bytes=nbytes,
        median_s=seconds,
        repeats=repeats,
        warmup=warmup,
        tflops=flops / seconds / 1e12 if flops else 0.0,
        gbps=nbytes / seconds / 1e9 if nbytes else 0.0,
        **shape,
    )


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
    return _collect_cuda(torch, ops, quick, repeats or (10 if quick else 30), warmup or 3, say)


# ---- GPU -------------------------------------------------------------------------------------------------


def _driver() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _collect_cuda(torch, ops, quick, repeats, warmup, say) -> list[KernelRow]:
    dev = torch.device("cuda")
    ident = {
        "gpu_name": torch.cuda.get_device_name(0),
        "driver": _driver(),
        "cuda": str(torch.version.cuda),
        "torch": torch.__version__,
        "backend": "torch-cuda",
    }
    rows: list[KernelRow] = []
    timed = dict(repeats=repeats, warmup=warmup, timer="cuda")
    bf16 = torch.bfloat16
    gen = torch.Generator(device=dev).manual_seed(0)

    def randn(*shape, dtype=bf16):
        return torch.randn(*shape, device=dev, dtype=torch.float32, generator=gen).to(dtype)

    if "hbm_copy" in ops:
        for mib in [64, 512] if quick else [16, 64, 256, 1024, 4096]:
            src = randn(mib * 2**20 // 2)
            dst = torch.empty_like(src)
            t = _median_time(lambda s=src, d=dst: d.copy_(s), **timed)
            rows.append(_row(ident, "hbm_copy", "bf16", t, 0.0, 2.0 * src.numel() * 2, repeats, warmup))
            say(rows[-1].label)
            del src, dst
    if "gemm" in ops:
        shapes = [
            (m, n, k)
            for m in ([16, 1024] if quick else TOKENS)
            for n, k in (DEEPSEEK_NK[:2] if quick else DEEPSEEK_NK)
        ]
        for m, n, k in shapes:
            a, b = randn(m, k), randn(n, k)
            t = _median_time(lambda a=a, b=b: a @ b.t(), **timed)
            rows.append(
                _row(
                    ident,
                    "gemm",
                    "bf16",
                    t,
                    2.0 * m * n * k,
                    2.0 * (m * k + n * k + m * n),
                    repeats,
                    warmup,
                    m=m,
                    n=n,
                    k=k,
                )
            )
            say(rows[-1].label)
            fp8 = _fp8_gemm(torch, a, b)
            if fp8 is not None:
                t = _median_time(fp8, **timed)
                rows.append(
                    _row(
                        ident,
                        "gemm",
                        "fp8",
                        t,
                        2.0 * m * n * k,
                        1.0 * (m * k + n * k) + 2.0 * m * n,
                        repeats,
                        warmup,
                        m=m,
                        n=n,
                        k=k,
                    )
                )
                say(rows[-1].label)
    if "grouped_gemm" in ops:
        for groups, m_per in [(8, 64)] if quick else [(8, 64), (32, 128), (64, 256), (128, 512), (256, 32)]:
            n, k = 4096, 7168  # one expert's gate_up at TP1
            a = randn(groups * m_per, k)
            w = randn(groups, n, k)
            offs = torch.arange(m_per, groups * m_per + 1, m_per, device=dev, dtype=torch.int32)
            grouped = getattr(torch, "_grouped_mm", None)
            if grouped is not None:

                def fn(a=a, w=w, offs=offs, grouped=grouped):
                    return grouped(a, w.transpose(1, 2), offs=offs)
            else:  # documented fallback: one matmul per expert

                def fn(a=a, w=w, m_per=m_per, groups=groups):
                    return [a[g * m_per : (g + 1) * m_per] @ w[g].t() for g in range(groups)]

            try:
                t = _median_time(fn, **timed)
            except RuntimeError as exc:  # unsupported on this GPU / PyTorch build
                say(f"grouped_gemm skipped: {exc}")
                continue
            rows.append(
                _row(
                    ident,
                    "grouped_gemm",
                    "bf16",
                    t,
                    2.0 * groups * m_per * n * k,
                    2.0 * (groups * m_per * k + groups * n * k + groups * m_per * n),
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
        import torch.nn.functional as F

        cases = (
            [(1, 32, 2048, 2048, 128, 1), (16, 32, 1, 4096, 128, 0)]
            if quick
            else [
                (1, 64, 2048, 2048, 128, 1),
                (1, 64, 8192, 8192, 128, 1),
                (4, 64, 4096, 4096, 128, 1),
                (32, 64, 1, 2048, 128, 0),
                (128, 64, 1, 4096, 128, 0),
                (64, 64, 1, 16384, 128, 0),
            ]
        )
        for b, h, sq, skv, d, causal in cases:
            q, kk, v = randn(b, h, sq, d), randn(b, h, skv, d), randn(b, h, skv, d)
            t = _median_time(
                lambda q=q, kk=kk, v=v, c=causal: F.scaled_dot_product_attention(q, kk, v, is_causal=bool(c)),
                **timed,
            )
            pairs = b * h * (sq * (skv - sq) + sq * (sq + 1) / 2 if causal else sq * skv)
            rows.append(
                _row(
                    ident,
                    "attention",
                    "bf16",
                    t,
                    4.0 * d * pairs,
                    2.0 * b * h * (2 * sq + 2 * skv) * d,
                    repeats,
                    warmup,
                    batch=b,
                    heads=h,
                    seq_q=sq,
                    seq_kv=skv,
                    head_dim=d,
                    causal=causal,
                )
            )
            say(rows[-1].label)
    if "all_reduce" in ops:
        if torch.cuda.device_count() < 2:
            say("all_reduce skipped: one GPU visible")
        else:
            rows += _collect_all_reduce(torch, ident, quick, repeats, warmup, say)
    return rows


def _fp8_gemm(torch, a, b):
    """A ``torch._scaled_mm`` FP8 GEMM closure, or None where the GPU / PyTorch lacks it."""
    scaled_mm = getattr(torch, "_scaled_mm", None)
    fp8 = getattr(torch, "float8_e4m3fn", None)
    if scaled_mm is None or fp8 is None or torch.cuda.get_device_capability(0) < (8, 9):
        return None
    a8, b8 = a.to(fp8), b.to(fp8)
    one = torch.tensor(1.0, device=a.device)

    def fn():
        return scaled_mm(a8, b8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    try:
        fn()
    except (RuntimeError, TypeError):
        return None
    return fn


def _collect_all_reduce(torch, ident, quick, repeats, warmup, say) -> list[KernelRow]:
    import os

    import torch.multiprocessing as mp

    ranks = torch.cuda.device_count()
    sizes = [2**20, 2**26] if quick else [2**18, 2**20, 2**22, 2**24, 2**26, 2**28]
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    out = mp.get_context("spawn").Manager().list()
    mp.spawn(_all_reduce_worker, args=(ranks, sizes, repeats, warmup, out), nprocs=ranks, join=True)
    rows = []
    for nbytes, seconds in out:
        rows.append(
            _row(ident, "all_reduce", "bf16", seconds, 0.0, float(nbytes), repeats, warmup, ranks=ranks)
        )
        say(rows[-1].label)
    return rows


def _all_reduce_worker(rank, ranks, sizes, repeats, warmup, out):  # pragma: no cover - needs several GPUs
    import torch
    import torch.distributed as dist

    dist.init_process_group("nccl", rank=rank, world_size=ranks)
    torch.cuda.set_device(rank)
    for nbytes in sizes:
        x = torch.randn(nbytes // 2, device="cuda", dtype=torch.bfloat16)
        t = _median_time(lambda x=x: dist.all_reduce(x), repeats, warmup, "cuda")
        if rank == 0:
            out.append((nbytes, t))
    dist.destroy_process_group()


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
            t = _median_time(lambda s=src, d=dst: np.copyto(d, s), **timed)
            rows.append(_row(ident, "hbm_copy", "fp32", t, 0.0, 2.0 * src.nbytes, repeats, warmup))
            say(rows[-1].label)
    if "gemm" in ops:
        for m, n, k in ((8, 256, 256), (64, 256, 512), (128, 512, 256), (256, 512, 512), (32, 128, 1024)):
            a = rng.standard_normal((m, k)).astype(np.float32)
            b = rng.standard_normal((k, n)).astype(np.float32)
            t = _median_time(lambda a=a, b=b: a @ b, **timed)
            rows.append(
                _row(
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
        t = _median_time(lambda: np.matmul(a, w), **timed)
        rows.append(
            _row(
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
        for b, h, sq, skv, d in ((1, 4, 64, 64, 32), (8, 4, 1, 256, 32)):
            q = rng.standard_normal((b, h, sq, d)).astype(np.float32)
            kk = rng.standard_normal((b, h, skv, d)).astype(np.float32)
            v = rng.standard_normal((b, h, skv, d)).astype(np.float32)

            def attn(q=q, kk=kk, v=v, d=d):
                s = q @ kk.swapaxes(-1, -2) / np.sqrt(d)
                s = np.exp(s - s.max(axis=-1, keepdims=True))
                return (s / s.sum(axis=-1, keepdims=True)) @ v

            t = _median_time(attn, **timed)
            pairs = b * h * sq * skv
            rows.append(
                _row(
                    ident,
                    "attention",
                    "fp32",
                    t,
                    4.0 * d * pairs,
                    4.0 * b * h * (2 * sq + 2 * skv) * d,
                    repeats,
                    warmup,
                    batch=b,
                    heads=h,
                    seq_q=sq,
                    seq_kv=skv,
                    head_dim=d,
                    causal=0,
                )
            )
            say(rows[-1].label)
    return rows
