"""``perfsim plan``: the best vLLM deployment for a workload and SLOs, from simulating every candidate."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from perfsim.commands.common import check_output_path, input_files
from perfsim.commands.fields import add_model_arguments, collect_model_arguments
from perfsim.commands.options import model_from_args
from perfsim.commands.sweep import confirm_grid
from perfsim.errors import SpecError
from perfsim.executors.base import EXECUTOR_SPELLINGS
from perfsim.planning import LARGE_PLAN_POINTS, PlanConfig, PlanResult, plan
from perfsim.planning.plan import estimated_plan_s, plan_points
from perfsim.plots import frontier_plot
from perfsim.specs.setup import Setup


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``plan``."""
    p = sub.add_parser(
        "plan",
        help="Find the vLLM deployment that meets SLOs at the most goodput per GPU (capacity planning).",
        description="Enumerate deployments (TP, DP, EP, all-to-all backend, DBO, EPLB, P/D ratios, token budget, "
        "max-num-seqs, MTP) up to --max-gpus, prune those that do not fit (with vLLM's reason), simulate each at "
        "every --max-concurrency, and recommend per --goodput SLO set the one with the most goodput per GPU.",
    )
    add_model_arguments(p, Setup, title="model and hardware")
    add_model_arguments(p, PlanConfig, title="search space, workload (vllm bench serve flags) and SLOs")
    p.add_argument("--calibration", default="default", help="Calibration profile ('none' = spec-only).")
    p.add_argument(
        "--executor", default="local", metavar="WHERE", help=f"Where simulations run: {EXECUTOR_SPELLINGS}."
    )
    p.add_argument(
        "--workers", type=int, default=None, help="Processes of the local pool or of a cluster started here."
    )
    p.add_argument("--json", metavar="FILE", help="Write candidates and recommendations as JSON.")
    p.add_argument("--csv", metavar="FILE", help="Write one row per candidate (deployment x concurrency).")
    p.add_argument(
        "--plot", metavar="FILE", help="Write the frontier plot (PNG/SVG/PDF), recommendations marked."
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help=f"Run a plan of more than {LARGE_PLAN_POINTS:,} simulations without asking.",
    )
    p.set_defaults(handler=cmd_plan)


def cmd_plan(args: argparse.Namespace) -> int:
    """Plan, print the recommendations and write the outputs."""
    if args.workers is not None and args.workers < 1:
        raise SpecError("--workers must be >= 1")
    setup = model_from_args(args, Setup)
    cfg = model_from_args(args, PlanConfig)
    outputs = [(args.json, None), (args.csv, (".csv",)), (args.plot, (".png", ".svg", ".pdf"))]
    paths = [path for path, _ in outputs if path]
    if len(set(paths)) < len(paths):
        raise SpecError("--json, --csv and --plot must name different files")
    for path, suffixes in outputs:
        if path:
            check_output_path(path, suffixes, inputs=input_files(args))
    stubs, points, _pruned = plan_points(setup, cfg, args.calibration)
    workers = args.workers or os.cpu_count() or 1
    estimate_s = estimated_plan_s(stubs, workers)
    confirm_grid(len(points), estimate_s, workers, args.yes, what="plan", unit="simulations")
    journal = next((f"{path}.journal.jsonl" for path, _ in outputs[:2] if path), None)
    if journal and Path(journal).exists():
        print(f"resuming from {journal}")
    result = plan(
        setup.model,
        setup.hw,
        setup.precision,
        quantization=setup.quantization,
        calibration=args.calibration,
        executor=args.executor,
        workers=args.workers,
        journal=journal,
        keep_journal=True,
        progress=True,
        max_points=None,
        **collect_model_arguments(args, PlanConfig),
    )
    print(summary(result))
    if args.json:
        Path(args.json).write_text(result.to_json())
        print(f"wrote {args.json}")
    if args.csv:
        result.write_csv(args.csv)
        print(f"wrote {args.csv}")
    if args.plot:
        frontier_plot(
            [c for c in result.candidates if c["error"] is None], args.plot, recommended=result.recommended
        )
        print(f"wrote {args.plot}")
    if journal:  # every output is written: the finished simulations are no longer needed
        Path(journal).unlink(missing_ok=True)
    return 0


def summary(result: PlanResult) -> str:
    """The plan in a few lines: counts, the frontier, one recommendation per SLO set with its command lines."""
    ok = [c for c in result.candidates if c["error"] is None]
    lines = [
        f"plan: {result.plan['model']} ({result.plan['precision']}) on {result.plan['hw']}: "
        f"{len(ok)} simulations of {len({c['shape'] for c in ok})} deployments, {len(result.pruned)} pruned "
        "(do not fit)",
        "frontier (output tok/s per user -> per GPU):",
    ]
    for c in sorted((c for c in ok if c["on_frontier"]), key=lambda c: c["output_tok_s_per_user"] or 0):
        lines.append(
            f"  {c['output_tok_s_per_user']:8.1f} -> {c['output_tok_s_per_gpu']:8.1f}  {c['shape']} "
            f"at {c['load']} ({c['num_gpus']} GPUs)"
        )
    for pick in result.recommended:
        slo = " ".join(pick["goodput"]) if pick["goodput"] else "no SLO: most output tokens/s per GPU"
        if pick["candidate"] is None:
            lines.append(f"recommended for {slo}: none, {pick['reason']}")
            continue
        lo, hi = pick["score_band"]
        lines.append(
            f"recommended for {slo}: {pick['shape']} on {pick['num_gpus']} GPUs at {pick['load']}: "
            f"{pick['score_value']:.0f} tok/s/GPU (expected {lo:.0f}-{hi:.0f})"
        )
        lines += [f"  {line}" for line in pick["vllm_serve"]] + [f"  {pick['vllm_bench_serve']}"]
    return "\n".join(lines)
