"""``perfsim predict``: what ``vllm bench serve`` would measure, with vLLM's and bench serve's flags."""

from __future__ import annotations

import argparse
import json
import math
import sys

from perfsim.commands.common import check_output_folder, check_output_path, input_files, resolve_for_cli
from perfsim.commands.fields import add_model_arguments, collect_model_arguments
from perfsim.commands.options import model_from_args
from perfsim.commands.save_result import parse_metadata, save_result
from perfsim.errors import SpecError
from perfsim.prediction import HEADLINE_SCENARIOS, MAX_SEED_BAND, Prediction, predict
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import Deployment
from perfsim.specs.setup import Setup


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``predict``."""
    p = sub.add_parser(
        "predict",
        help="Predict serving throughput and latency (vLLM + vllm bench serve).",
        description="Simulate `vllm serve` + `vllm bench serve` (random dataset). Without workload flags it "
        "predicts the two published headline scenarios of DeepSeek-V3.2 (prefill-only ISL 2048 / "
        "OSL 1 at concurrency 64; mixed ISL 2048 / OSL 1024 at concurrency 256; 1000 prompts).",
    )
    add_model_arguments(p, Setup, title="model and hardware")
    add_model_arguments(p, Deployment, title="deployment (vllm serve flags)")
    add_model_arguments(p, BenchConfig, title="workload (vllm bench serve flags)")
    p.add_argument(
        "--calibration",
        default="default",
        help="Calibration profile name or YAML ('none' = spec-only) [default: the vLLM 0.14.1 profile].",
    )
    p.add_argument(
        "--seed-band",
        type=int,
        default=1,
        metavar="N",
        help="Also run the next N-1 seeds (--seed) and print each headline metric's range over the N runs "
        "(run-to-run jitter of arrivals and step times) [default: 1, off].",
    )
    p.add_argument("--label", default="", help="Label stored in the result (like bench serve's --label).")
    p.add_argument(
        "--save-result",
        action="store_true",
        help="Write each scenario's result as vllm bench serve --save-result does: one JSON object per file, "
        "named {label}-{request_rate}qps[-concurrency{N}]-{model}-{date}.json.",
    )
    p.add_argument("--result-dir", metavar="DIR", help="Folder of --save-result files (created if missing).")
    p.add_argument(
        "--result-filename", metavar="FILE", help="File name of --save-result (one scenario only)."
    )
    p.add_argument(
        "--metadata",
        nargs="+",
        metavar="KEY=VALUE",
        help="Extra keys stored in the result, as bench serve does.",
    )
    p.add_argument(
        "--json", metavar="FILE", help="Write a JSON array (one object per scenario) to FILE, '-' = stdout."
    )
    p.set_defaults(
        handler=cmd_predict,
        takes_vllm_flags=True,
        own_flags=[f for a in p._actions for f in a.option_strings],
    )


def cmd_predict(args: argparse.Namespace) -> int:
    """Run the scenario(s) and print summaries and/or JSON."""
    if not 1 <= args.seed_band <= MAX_SEED_BAND:
        raise SpecError(f"--seed-band {args.seed_band}: the number of seeds must be 1 to {MAX_SEED_BAND}")
    setup = model_from_args(args, Setup)
    dep = model_from_args(args, Deployment)
    model, hw = setup.load()
    resolved, _plan, _notes = resolve_for_cli(model, hw, dep)  # clear errors before simulating
    workload_flags = collect_model_arguments(args, BenchConfig)
    if workload_flags:
        scenarios = {args.label or "": model_from_args(args, BenchConfig)}
    else:
        scenarios = HEADLINE_SCENARIOS
    dep = dep.model_copy(update={"tensor_parallel_size": resolved.tp})
    if args.json and args.json != "-":
        check_output_path(args.json, inputs=input_files(args))
    metadata = parse_metadata(args.metadata or [])
    if (args.result_dir or args.result_filename) and not args.save_result:
        raise SpecError(
            "--result-dir and --result-filename name the files of --save-result: add --save-result"
        )
    if args.save_result and args.result_filename and len(scenarios) > 1:
        raise SpecError(
            "--result-filename names one file, and without workload flags predict runs two scenarios: give the "
            "workload (e.g. --random-input-len) or use --result-dir"
        )
    if args.save_result and args.result_dir:
        check_output_folder(args.result_dir)
    to_stdout = args.json == "-"
    predictions: list[Prediction] = []
    for label, bench in scenarios.items():
        pred = predict(
            model,
            hw,
            deployment=dep,
            bench=bench,
            calibration=args.calibration,
            label=label,
            progress=not to_stdout,
            seed_band=args.seed_band,
        )
        pred.result.update(metadata)
        if args.save_result:
            saved = save_result(
                pred.result, bench, args.result_dir, args.result_filename, inputs=input_files(args)
            )
            print(f"wrote {saved}")
        ignored = getattr(args, "ignored_vllm_flags", [])
        if ignored:
            pred.notes.append(
                f"vLLM flags perfsim does not model (no effect on the prediction): {', '.join(ignored)}"
            )
        predictions.append(pred)
        if not to_stdout:
            print(pred.summary())
            print()
    if args.json:
        text = json.dumps([p.result for p in predictions], indent=2, default=_json_default, allow_nan=False)
        if to_stdout:
            sys.stdout.write(text + "\n")
        else:
            with open(args.json, "w") as fh:
                fh.write(text + "\n")
            print(f"wrote {len(predictions)} scenario(s) to {args.json}")
    return 0


def _json_default(value):
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
