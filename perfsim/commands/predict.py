"""``perfsim predict``: the main job. (Memory plan only until the serving simulator lands.)"""

from __future__ import annotations

import argparse
import json

from perfsim.cli_fields import add_model_arguments
from perfsim.commands.options import model_from_args, name_flags
from perfsim.costs.memory import GiB, check_fits, smallest_fitting_tp
from perfsim.errors import DoesNotFitError, SpecError
from perfsim.report import format_table
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.setup import Setup


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``predict``."""
    p = sub.add_parser("predict", help="Predict serving throughput and latency (vLLM + vllm bench serve).")
    add_model_arguments(p, Setup, title="model and hardware")
    add_model_arguments(p, Deployment, title="deployment (vllm serve flags)")
    p.add_argument("--json", metavar="FILE", help="Write JSON to FILE ('-' for stdout).")
    p.set_defaults(handler=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    """Resolve the deployment and print the memory plan."""
    setup = model_from_args(args, Setup)
    dep = model_from_args(args, Deployment)
    model, hw = setup.load()
    try:
        tp = dep.tensor_parallel_size or smallest_fitting_tp(model, hw, dep)
    except SpecError as exc:
        raise name_flags(exc, Deployment) from None
    if tp is None:
        raise DoesNotFitError(f"{model.name} ({model.precision}) does not fit on any tensor-parallel group of "
                              f"{hw.name} within its {hw.scaleup_domain_gpus}-GPU scale-up domain")
    try:
        resolved = resolve_deployment(dep, model, hw, tp)
    except SpecError as exc:
        raise name_flags(exc, Deployment) from None
    plan = check_fits(model, hw, resolved)
    summary = {
        "model": model.name, "precision": model.precision, "hw": hw.name,
        "tensor_parallel_size": resolved.tp, "data_parallel_size": resolved.dp,
        "weights_bytes_per_gpu": plan.weights_bytes, "kv_cache_bytes_per_gpu": plan.kv_cache_bytes,
        "kv_capacity_tokens": plan.kv_capacity_tokens, "kv_cache_dtype": resolved.kv_cache_dtype,
    }
    if args.json:
        text = json.dumps(summary, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as fh:
                fh.write(text + "\n")
        return 0
    rows = [("weights per GPU", f"{plan.weights_bytes / GiB:.1f} GiB"),
            ("KV cache per GPU", f"{plan.kv_cache_bytes / GiB:.1f} GiB"),
            ("KV capacity", f"{plan.kv_capacity_tokens:,} tokens ({resolved.kv_cache_dtype})")]
    print(f"{model.name} {model.precision} on {resolved.tp}x {hw.name} (-tp {resolved.tp})")
    print(format_table(rows, ["", ""], align="ll"))
    return 0
