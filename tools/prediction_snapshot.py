#!/usr/bin/env python
"""Snapshot of perfsim's predictions, to show that a refactoring changes no number.

Writes (``--write FILE``) or compares against (``--check FILE``) the full result of:

* the two headline scenarios (``perfsim predict --hw gb300 --precision fp4``), calibrated;
* every predictable row of the bundled measurements, calibrated and spec-only;
* a set of coverage scenarios (MTP, P/D, DP+EP, other GPUs and precisions, synchronous scheduling, eager mode);
* one-step cost breakdowns of a few batches (``perfsim explain``).

Every number of every result is compared with a relative tolerance (default 1e-9). Not a test: run it before
and after a change that must not move predictions, e.g.::

    python tools/prediction_snapshot.py --write /tmp/before.json   # on the old commit
    python tools/prediction_snapshot.py --check /tmp/before.json   # on the new one
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor

#: keys that describe the run rather than predict it
VOLATILE_KEYS = ("date", "perfsim_version")

#: extra scenarios: (label, model, hw, precision, deployment, bench)
COVERAGE = [
    (
        "r1 mtp1 tp2",
        "deepseek-r1",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2, "num_speculative_tokens": 1},
        {"num_prompts": 200, "random_input_len": 2048, "random_output_len": 256, "max_concurrency": 64},
    ),
    (
        "r1 mtp3 cutlass",
        "deepseek-r1",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2, "num_speculative_tokens": 3, "attention_backend": "CUTLASS_MLA"},
        {"num_prompts": 100, "random_input_len": 1024, "random_output_len": 128, "max_concurrency": 32},
    ),
    (
        "v32 mtp2",
        "deepseek-v3.2",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2, "num_speculative_tokens": 2},
        {"num_prompts": 100, "random_input_len": 2048, "random_output_len": 128, "max_concurrency": 32},
    ),
    (
        "v32 pd 1p1d",
        "deepseek-v3.2",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2, "num_prefill_instances": 1, "num_decode_instances": 1},
        {"num_prompts": 200, "random_input_len": 4096, "random_output_len": 256, "max_concurrency": 64},
    ),
    (
        "r1 pd 2p1d nic",
        "deepseek-r1",
        "gb300",
        "fp4",
        {
            "tensor_parallel_size": 2,
            "num_prefill_instances": 2,
            "num_decode_instances": 1,
            "kv_transfer_link": "nic",
        },
        {"num_prompts": 150, "random_input_len": 2048, "random_output_len": 128, "request_rate": 8.0},
    ),
    (
        "r1 dp4 ep",
        "deepseek-r1",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 1, "data_parallel_size": 4, "enable_expert_parallel": True},
        {
            "num_prompts": 200,
            "random_input_len": 1024,
            "random_output_len": 256,
            "max_concurrency": 128,
            "random_range_ratio": 0.3,
        },
    ),
    (
        "v32 dp2 no ep",
        "deepseek-v3.2",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 1, "data_parallel_size": 2},
        {"num_prompts": 100, "random_input_len": 1024, "random_output_len": 64, "max_concurrency": 32},
    ),
    (
        "v32 2 instances",
        "deepseek-v3.2",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2, "num_instances": 2},
        {"num_prompts": 200, "random_input_len": 2048, "random_output_len": 128, "max_concurrency": 96},
    ),
    (
        "r1 h200 fp8 tp8",
        "deepseek-r1",
        "h200",
        "fp8",
        {"tensor_parallel_size": 8},
        {"num_prompts": 100, "random_input_len": 2048, "random_output_len": 128, "max_concurrency": 32},
    ),
    (
        "v32 h200 fp8",
        "deepseek-v3.2",
        "h200",
        "fp8",
        {},
        {"num_prompts": 60, "random_input_len": 4096, "random_output_len": 64, "max_concurrency": 16},
    ),
    (
        "v32 b200 fp8 tp8",
        "deepseek-v3.2",
        "b200",
        "fp8",
        {"tensor_parallel_size": 8},
        {"num_prompts": 100, "random_input_len": 1024, "random_output_len": 256, "max_concurrency": 64},
    ),
    (
        "r1 b300 bf16 sync",
        "deepseek-r1",
        "b300",
        "bf16",
        {"async_scheduling": False},
        {"num_prompts": 60, "random_input_len": 1024, "random_output_len": 64, "max_concurrency": 16},
    ),
    (
        "v2 h100 eager",
        "deepseek-v2",
        "h100",
        "bf16",
        {"enforce_eager": True},
        {"num_prompts": 60, "random_input_len": 512, "random_output_len": 64, "max_concurrency": 16},
    ),
    (
        "v32 long context",
        "deepseek-v3.2",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2},
        {"num_prompts": 24, "random_input_len": 32768, "random_output_len": 128, "max_concurrency": 8},
    ),
    (
        "r1 long context",
        "deepseek-r1",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2},
        {"num_prompts": 24, "random_input_len": 32768, "random_output_len": 128, "max_concurrency": 8},
    ),
    (
        "r1 preempting",
        "deepseek-r1",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.72, "max_model_len": 4096},
        {"num_prompts": 300, "random_input_len": 2048, "random_output_len": 400, "max_concurrency": 400},
    ),
    (
        "v32 poisson burst",
        "deepseek-v3.2",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2},
        {
            "num_prompts": 200,
            "random_input_len": 1500,
            "random_output_len": 300,
            "request_rate": 5.0,
            "burstiness": 0.5,
            "random_range_ratio": 0.5,
            "seed": 7,
        },
    ),
]

#: one-step breakdowns: (label, model, hw, precision, deployment, new tokens, context tokens)
STEPS = [
    (
        "v32 mixed",
        "deepseek-v3.2",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2},
        [2048] * 4 + [1] * 64,
        [0] * 4 + [2048] * 64,
    ),
    ("r1 decode", "deepseek-r1", "gb300", "fp4", {"tensor_parallel_size": 2}, [1] * 128, [3000] * 128),
    (
        "r1 dp2 ep chunk",
        "deepseek-r1",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 1, "data_parallel_size": 2, "enable_expert_parallel": True},
        [4096, 1, 1],
        [8192, 100, 5000],
    ),
    (
        "v32 mtp verify",
        "deepseek-v3.2",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2, "num_speculative_tokens": 2},
        [3] * 32,
        [40000] * 32,
    ),
    ("r1 h200", "deepseek-r1", "h200", "fp8", {"tensor_parallel_size": 8}, [512, 1, 1, 1], [0, 10, 20, 30]),
]


def _predict(job: tuple) -> tuple[str, dict]:
    import perfsim

    key, model, hw, precision, deployment, bench, calibration = job
    pred = perfsim.predict(model, hw, precision, deployment=deployment, bench=bench, calibration=calibration)
    result = {k: v for k, v in pred.result.items() if k not in VOLATILE_KEYS}
    return key, result


def _step(job: tuple) -> tuple[str, dict]:
    import perfsim

    key, model, hw, precision, deployment, new, ctx = job
    for calibration in ("default",):
        cost = perfsim.explain_step(
            new, ctx, model=model, hw=hw, precision=precision, deployment=deployment, calibration=calibration
        )
    return key, cost.to_dict()


def jobs() -> tuple[list[tuple], list[tuple]]:
    """Every prediction and step to snapshot."""
    import perfsim

    preds: list[tuple] = []
    for label, bench in perfsim.HEADLINE_SCENARIOS.items():
        preds.append(
            (f"headline: {label}", "deepseek-v3.2", "gb300", "fp4", {}, bench.model_dump(), "default")
        )
    seen = set()
    for row in perfsim.load_measurements():
        if row.unknown is not None or row.scenario_key() in seen:
            continue
        seen.add(row.scenario_key())
        for calibration in ("default", "none"):
            preds.append(
                (
                    f"row {row.source} [{calibration}]",
                    row.model,
                    row.hw,
                    row.precision,
                    row.deployment,
                    row.bench,
                    calibration,
                )
            )
    for label, model, hw, precision, dep, bench in COVERAGE:
        preds.append((f"coverage: {label}", model, hw, precision, dep, bench, "default"))
    steps = [(f"step: {label}", m, h, p, d, n, c) for label, m, h, p, d, n, c in STEPS]
    return preds, steps


def snapshot(workers: int) -> dict[str, dict]:
    """All results, keyed by a readable label."""
    preds, steps = jobs()
    with ProcessPoolExecutor(workers) as pool:
        out = dict(pool.map(_predict, preds, chunksize=1))
        out.update(pool.map(_step, steps))
    return out


def compare(old, new, rel: float, path: str = "") -> list[str]:
    """Differences between two JSON-like trees (numbers within ``rel`` count as equal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        diffs = []
        for k in sorted(set(old) | set(new)):
            if k not in old or k not in new:
                diffs.append(f"{path}/{k}: only in {'new' if k in new else 'old'}")
            else:
                diffs += compare(old[k], new[k], rel, f"{path}/{k}")
        return diffs
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{path}: {len(old)} items -> {len(new)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for d in compare(a, b, rel, f"{path}[{i}]")
        ]
    numbers = (int, float)
    if isinstance(old, numbers) and isinstance(new, numbers) and not isinstance(old, bool):
        if math.isclose(old, new, rel_tol=rel, abs_tol=1e-12) or (math.isnan(old) and math.isnan(new)):
            return []
        return [f"{path}: {old!r} -> {new!r} ({(new - old) / old if old else math.inf:+.3g})"]
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="FILE")
    mode.add_argument("--check", metavar="FILE")
    parser.add_argument("--rel", type=float, default=1e-9, help="relative tolerance [default: 1e-9]")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    current = snapshot(args.workers)
    if args.write:
        with open(args.write, "w") as fh:
            json.dump(current, fh, indent=1, sort_keys=True, default=str)
        print(f"wrote {len(current)} results to {args.write}")
        return 0
    with open(args.check) as fh:
        before = json.load(fh)
    current = json.loads(json.dumps(current, default=str))
    diffs = compare(before, current, args.rel)
    print(
        f"{len(current)} results compared with {args.check} (relative tolerance {args.rel:g}): "
        f"{len(diffs)} differences"
    )
    for d in sorted(diffs, key=lambda d: "only in new" in d)[:60]:
        print("  " + d)
    if len(diffs) > 60:
        # every differing result by name, so a long list still shows which scenarios moved
        moved = sorted({d.split("/", 2)[1].split(" [")[0] for d in diffs if d.startswith("/")})
        sources = sorted({m.split(":")[0] for m in moved})
        print(f"differences in {len(moved)} results, from: " + ", ".join(sources))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
