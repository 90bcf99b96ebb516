"""``perfsim collect``: time kernels on this machine's GPU (or CPU) into a kernel measurement file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perfsim.collect.runner import collect
from perfsim.collect.schema import OPS, write_rows
from perfsim.commands.common import check_output_path, input_files
from perfsim.errors import SpecError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``collect``."""
    p = sub.add_parser(
        "collect",
        help="Measure HBM, GEMM, grouped-GEMM, attention and all-reduce kernels on this device.",
        description="Writes a kernel CSV for `perfsim calibrate --kernels` and `perfsim validate --kernels`. "
        "The GPU path needs PyTorch (pip install 'perfsim[collect]'); --device cpu --quick runs the "
        "same pipeline on tiny numpy kernels.",
    )
    p.add_argument("--out", required=True, metavar="CSV", help="Where to write the measurements.")
    p.add_argument(
        "--device", choices=["cuda", "cpu"], default="cuda", help="Device to measure [default: cuda]."
    )
    p.add_argument("--quick", action="store_true", help="A few small shapes (a minute on a GPU).")
    p.add_argument(
        "--ops", help="Comma-separated subset of hbm_copy, gemm, grouped_gemm, attention, all_reduce."
    )
    p.add_argument("--repeats", type=int, default=None, help="Timed runs per kernel (median reported).")
    p.add_argument("--warmup", type=int, default=None, help="Untimed runs before timing.")
    p.set_defaults(handler=cmd_collect)


def cmd_collect(args: argparse.Namespace) -> int:
    """Run the microbenchmarks and write the CSV."""
    ops = [o.strip() for o in args.ops.split(",")] if args.ops else None
    bad = [o for o in ops or [] if o not in OPS]
    if bad:
        raise SpecError(f"--ops: unknown {', '.join(bad)}; allowed: {', '.join(OPS)}")
    if args.repeats is not None and args.repeats < 1:
        raise SpecError("--repeats must be >= 1")
    if args.warmup is not None and args.warmup < 0:
        raise SpecError("--warmup must be >= 0")
    check_output_path(args.out, (".csv",), inputs=input_files(args))
    rows = collect(
        args.device,
        quick=args.quick,
        ops=ops,
        repeats=args.repeats,
        warmup=args.warmup,
        progress=lambda msg: print(f"  {msg}", file=sys.stderr),
    )
    write_rows(Path(args.out), rows)
    print(f"wrote {len(rows)} kernel measurements ({rows[0].gpu_name if rows else 'none'}) to {args.out}")
    return 0
