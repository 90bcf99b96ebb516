"""``perfsim explain``: the breakdown of one engine step for a described batch, by operator."""

from __future__ import annotations

import argparse
import json
import re

from perfsim.calibration.profiles import load_params
from perfsim.commands.common import resolve_for_cli
from perfsim.commands.fields import add_model_arguments
from perfsim.commands.options import model_from_args
from perfsim.costs.interface import StepCost
from perfsim.costs.step import StepCostModel
from perfsim.errors import SpecError
from perfsim.report import format_table
from perfsim.specs.deployment import Deployment
from perfsim.specs.setup import Setup

_PREFILL = re.compile(r"^(\d+)(?:x(\d+))?(?:@(\d+))?$")
_DECODE = re.compile(r"^(\d+)@(\d+)$")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``explain``."""
    p = sub.add_parser(
        "explain",
        help="Break down one engine step for a described batch, by operator.",
        description="Cost of one vLLM engine step. Example: perfsim explain --hw gb300 --precision fp4 -tp 2 "
        "--prefill 2048x8 --decode 256@2048",
    )
    add_model_arguments(p, Setup, title="model and hardware")
    add_model_arguments(p, Deployment, title="deployment (vllm serve flags)")
    p.add_argument(
        "--prefill",
        action="append",
        default=[],
        metavar="TOKENSxREQS[@CONTEXT]",
        help="Prefill chunks: TOKENS new tokens for each of REQS requests, after CONTEXT cached tokens "
        "(e.g. 2048x8, or 4096x1@8192 for a later chunk). Repeatable.",
    )
    p.add_argument(
        "--decode",
        action="append",
        default=[],
        metavar="REQS@CONTEXT",
        help="Decoding requests: REQS requests with CONTEXT tokens each (e.g. 256@2048). Repeatable.",
    )
    p.add_argument(
        "--calibration",
        default="default",
        help="Calibration profile name or file ('none' = spec-only) [default: the vLLM 0.14.1 profile, as predict].",
    )
    p.add_argument("--json", action="store_true", help="Print JSON.")
    p.set_defaults(handler=cmd_explain)


def parse_batch(prefill: list[str], decode: list[str], spec_tokens: int) -> tuple[list[int], list[int]]:
    """Per-request (new tokens, context) lists from --prefill / --decode specs."""
    new: list[int] = []
    ctx: list[int] = []
    for spec in prefill:
        m = _PREFILL.match(spec.strip())
        if not m:
            raise SpecError(f"--prefill '{spec}': expected TOKENSxREQS[@CONTEXT], e.g. 2048x8 or 4096x1@8192")
        tokens, reqs, context = int(m[1]), int(m[2] or 1), int(m[3] or 0)
        if tokens < 1 or reqs < 1:
            raise SpecError(f"--prefill '{spec}': tokens and requests must be >= 1")
        new += [tokens] * reqs
        ctx += [context] * reqs
    for spec in decode:
        m = _DECODE.match(spec.strip())
        if not m:
            raise SpecError(f"--decode '{spec}': expected REQS@CONTEXT, e.g. 256@2048")
        reqs, context = int(m[1]), int(m[2])
        if reqs < 1:
            raise SpecError(f"--decode '{spec}': requests must be >= 1")
        new += [1 + spec_tokens] * reqs
        ctx += [context] * reqs
    if not new:
        raise SpecError("describe a batch with --prefill TOKENSxREQS and/or --decode REQS@CONTEXT")
    return new, ctx


def cmd_explain(args: argparse.Namespace) -> int:
    """Cost one step and print its breakdown."""
    setup = model_from_args(args, Setup)
    dep = model_from_args(args, Deployment)
    model, hw = setup.load()
    resolved, _plan, notes = resolve_for_cli(model, hw, dep, must_fit=False)
    new, ctx = parse_batch(args.prefill, args.decode, resolved.num_speculative_tokens)
    if sum(new) > resolved.max_num_batched_tokens:
        notes.append(
            f"the batch has {sum(new)} new tokens, more than max_num_batched_tokens "
            f"{resolved.max_num_batched_tokens}: vLLM would split it over several steps "
            f"(raise --max-num-batched-tokens to schedule it at once)"
        )
    if len(new) > resolved.max_num_seqs:
        notes.append(f"the batch has {len(new)} requests, more than max_num_seqs {resolved.max_num_seqs}")
    params, provenance = load_params(args.calibration, hw)
    cost_model = StepCostModel(model, hw, resolved, params)
    stats = cost_model.stats(new, ctx)
    cost = cost_model.step([stats] * resolved.dp)
    if args.json:
        out = {
            "model": model.name,
            "precision": model.precision,
            "hw": hw.name,
            "tensor_parallel_size": resolved.tp,
            "data_parallel_size": resolved.dp,
            "calibration": provenance,
            "batch": {
                "num_reqs": stats.num_reqs,
                "num_tokens": stats.num_tokens,
                "prefill_reqs": stats.pre_reqs,
                "decode_reqs": stats.dec_reqs,
            },
            "notes": notes,
            "step": cost.to_dict(),
        }
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{model.name} {model.precision} on {hw.name}, -tp {resolved.tp}"
        f"{f' -dp {resolved.dp}' if resolved.dp > 1 else ''}{' (EP)' if resolved.ep > 1 else ''}; "
        f"calibration: {provenance}"
    )
    print(
        f"batch per engine: {stats.num_reqs} requests, {stats.num_tokens} tokens ({stats.pre_reqs} prefill, "
        f"{stats.dec_reqs} decode); CUDA graphs: {cost.graph_mode} ({cost.padded_tokens} padded tokens)"
    )
    for note in notes:
        print(f"note: {note}")
    print()
    print(format_step(cost))
    return 0


def format_step(cost: StepCost) -> str:
    """The per-operator table and the totals of one step."""
    total = cost.gpu_s or 1.0
    rows = []
    for op in sorted(cost.ops, key=lambda o: -o.time_s):
        rows.append(
            (
                op.name,
                op.category,
                op.time_s * 1e3,
                100 * op.time_s / total,
                op.bound,
                op.dtype or "-",
                op.flops / 1e12,
                op.bytes / 1e9,
                op.comm_bytes / 1e9,
            )
        )
    rows.append(
        (
            "kernel boundaries",
            "overhead",
            cost.overhead_s * 1e3,
            100 * cost.overhead_s / total,
            "overhead",
            "-",
            0.0,
            0.0,
            0.0,
        )
    )
    table = format_table(
        rows,
        ["operator", "category", "time ms", "% of GPU", "bound", "dtype", "TFLOP", "GB", "link GB"],
        align="llrrllrrr",
    )
    share = ", ".join(
        f"{k} {100 * v / total:.0f}%"
        for k, v in sorted(cost.by_category().items(), key=lambda kv: -kv[1])
        if v > 0
    )
    lines = [
        table,
        "",
        f"GPU forward {cost.gpu_s * 1e3:.2f} ms, CPU launch {cost.launch_s * 1e3:.2f} ms, "
        f"CPU step {cost.cpu_s * 1e3:.2f} ms -> step {cost.total_s * 1e3:.2f} ms",
        f"by category: {share}",
        f"throughput of this step: {cost.num_tokens / cost.total_s:,.0f} tokens/s per engine",
    ]
    return "\n".join(lines)
