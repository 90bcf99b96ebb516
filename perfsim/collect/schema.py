"""The kernel measurement file: one row per timed kernel, with the device it ran on.

Columns (CSV): device identity (``gpu_name``, ``driver``, ``cuda``, ``torch``, ``backend``), the kernel
(``op``: hbm_copy, gemm, grouped_gemm, attention, all_reduce; ``dtype``; shape fields ``m``, ``n``, ``k``,
``groups``, ``batch``, ``heads``, ``seq_q``, ``seq_kv``, ``head_dim``, ``causal``, ``ranks``), the work
(``flops``, ``bytes``), the timing (``median_s``, ``repeats``, ``warmup``) and the achieved rates
(``tflops``, ``gbps``). Shape fields a kernel does not use are 0.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from perfsim.errors import SpecError

OPS = ("hbm_copy", "gemm", "grouped_gemm", "attention", "all_reduce")
DTYPES = ("fp32", "bf16", "fp8", "nvfp4")


@dataclass
class KernelRow:
    """One timed kernel."""

    gpu_name: str
    driver: str
    cuda: str
    torch: str
    backend: str
    op: str
    dtype: str
    m: int = 0
    n: int = 0
    k: int = 0
    groups: int = 0
    batch: int = 0
    heads: int = 0
    seq_q: int = 0
    seq_kv: int = 0
    head_dim: int = 0
    causal: int = 0
    ranks: int = 0
    flops: float = 0.0
    bytes: float = 0.0
    median_s: float = 0.0
    repeats: int = 0
    warmup: int = 0
    tflops: float = 0.0
    gbps: float = 0.0

    @property
    def label(self) -> str:
        """Short description of the kernel and its shape."""
        if self.op == "hbm_copy":
            return f"hbm_copy {self.bytes / 2**20:.0f} MiB"
        if self.op == "gemm":
            return f"gemm {self.dtype} {self.m}x{self.n}x{self.k}"
        if self.op == "grouped_gemm":
            return f"grouped_gemm {self.dtype} {self.groups}x({self.m}x{self.n}x{self.k})"
        if self.op == "attention":
            return (
                f"attention {self.dtype} b{self.batch} h{self.heads} q{self.seq_q} kv{self.seq_kv} "
                f"d{self.head_dim}{' causal' if self.causal else ''}"
            )
        return f"all_reduce {self.bytes / 2**20:.1f} MiB x{self.ranks}"


FIELDS = [f.name for f in fields(KernelRow)]


def write_rows(path: Path, rows: list[KernelRow]) -> None:
    """Write rows as CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))


def read_rows(path: Path) -> list[KernelRow]:
    """Read a kernel file; errors name the file, line and column."""
    if not path.exists():
        raise SpecError("file not found", source=str(path))
    rows = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(FIELDS) - set(reader.fieldnames or [])
        if missing:
            raise SpecError(
                f"not a perfsim kernel file: missing columns {', '.join(sorted(missing))}", source=str(path)
            )
        types = {f.name: f.type for f in fields(KernelRow)}
        for line, raw in enumerate(reader, start=2):
            values: dict[str, Any] = {}
            for name in FIELDS:
                text = raw[name]
                try:
                    values[name] = (
                        int(float(text))
                        if types[name] in ("int", int)
                        else (float(text) if types[name] in ("float", float) else text)
                    )
                except ValueError:
                    raise SpecError(
                        f"column '{name}': '{text}' is not a number", source=f"{path.name}:{line}"
                    ) from None
            row = KernelRow(**values)
            if row.op not in OPS:
                raise SpecError(
                    f"op '{row.op}' unknown; allowed: {', '.join(OPS)}", source=f"{path.name}:{line}"
                )
            if row.dtype not in DTYPES:
                raise SpecError(
                    f"dtype '{row.dtype}' unknown; allowed: {', '.join(DTYPES)}",
                    source=f"{path.name}:{line}",
                    field="dtype",
                )
            if row.median_s <= 0:
                raise SpecError("median_s must be positive", source=f"{path.name}:{line}")
            rows.append(row)
    if not rows:
        raise SpecError("no kernel rows", source=str(path))
    return rows
