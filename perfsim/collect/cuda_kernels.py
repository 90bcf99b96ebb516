"""The GPU path of ``perfsim collect``: PyTorch kernels on CUDA, timed with CUDA events.

FP8 GEMMs use ``torch._scaled_mm`` where the GPU supports it; FP4 GEMMs where PyTorch exposes them for the GPU
(Blackwell), otherwise they are skipped with a note. Grouped GEMMs use ``torch._grouped_mm`` when available,
else a loop of per-group matmuls. Attention uses PyTorch's scaled-dot-product attention (flash backend) as the
available proxy for vLLM's MLA kernels. All-reduce runs over NCCL when more than one GPU is visible.
"""

from __future__ import annotations

import os
import subprocess
from functools import partial

from perfsim.collect.schema import KernelRow
from perfsim.collect.timing import DEEPSEEK_NK, TOKENS, kernel_row, median_time


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


def collect_cuda(torch, ops, quick, repeats, warmup, say) -> list[KernelRow]:
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
            t = median_time(partial(dst.copy_, src), **timed)
            rows.append(kernel_row(ident, "hbm_copy", "bf16", t, 0.0, 2.0 * src.numel() * 2, repeats, warmup))
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
            t = median_time(partial(torch.matmul, a, b.t()), **timed)
            rows.append(
                kernel_row(
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
                t = median_time(fp8, **timed)
                rows.append(
                    kernel_row(
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
                t = median_time(fn, **timed)
            except RuntimeError as exc:  # unsupported on this GPU / PyTorch build
                say(f"grouped_gemm skipped: {exc}")
                continue
            rows.append(
                kernel_row(
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
            t = median_time(
                partial(F.scaled_dot_product_attention, q, kk, v, is_causal=bool(causal)),
                **timed,
            )
            pairs = b * h * (sq * (skv - sq) + sq * (sq + 1) / 2 if causal else sq * skv)
            rows.append(
                kernel_row(
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
            kernel_row(ident, "all_reduce", "bf16", seconds, 0.0, float(nbytes), repeats, warmup, ranks=ranks)
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
        t = median_time(partial(dist.all_reduce, x), repeats, warmup, "cuda")
        if rank == 0:
            out.append((nbytes, t))
    dist.destroy_process_group()
