#!/usr/bin/env python
"""Speed of ``perfsim plan``: simulations per second for aggregated and for P/D candidates, and what a
2,000-simulation plan would take, against the capacity-planning targets.

Not a test (timings depend on the machine). Run it and read the table:

    python benchmarks/bench_plan.py [--workers 2] [--json benchmarks/plan_speed.json]

Cases: DeepSeek-V3.2 NVFP4 on GB300, ISL 2048 / OSL 1024, 300 prompts, concurrency 16 / 64 / 256, up to 8
GPUs: every aggregated deployment (TP, DP, EP, all-to-all backends, DBO) and, separately, the P/D ones.
"""

from __future__ import annotations

import argparse
import json
import os
import time

#: the capacity-planning issue's target: 2,000 simulations in 5 minutes on 2 cores
TARGET_S, TARGET_SIMULATIONS = 300.0, 2000


def plan_case(disaggregated: str, workers: int) -> dict:
    from perfsim.planning import plan

    t0 = time.perf_counter()
    result = plan(
        "deepseek-v3.2",
        "gb300",
        max_gpus=8,
        disaggregated=disaggregated,
        random_input_len=2048,
        random_output_len=1024,
        num_prompts=300,
        max_concurrency=[16, 64, 256],
        goodput=[["ttft:3000", "tpot:60"]],
        workers=workers,
        progress=False,
    )
    wall = time.perf_counter() - t0
    n = len(result.candidates)
    return {
        "case": f"plan, {'P/D' if disaggregated == 'on' else 'aggregated'} candidates, {workers} process(es)",
        "simulations": n,
        "wall_s": wall,
        "simulations_per_s": n / wall,
        "2000_simulations_s": TARGET_SIMULATIONS * wall / n,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default="benchmarks/plan_speed.json")
    args = ap.parse_args()
    rows = [plan_case("off", args.workers), plan_case("on", args.workers)]
    print(f"{'case':<50} {'sims':>5} {'wall s':>8} {'sims/s':>7} {'2,000 sims':>11} {'/ target':>9}")
    for r in rows:
        print(
            f"{r['case']:<50} {r['simulations']:>5} {r['wall_s']:>8.1f} {r['simulations_per_s']:>7.2f} "
            f"{r['2000_simulations_s']:>9.0f} s {r['2000_simulations_s'] / TARGET_S:>8.2f}x"
        )
    with open(args.json, "w") as fh:
        json.dump({"cpus": os.cpu_count(), "results": rows}, fh, indent=2)
    print(f"\nwrote {args.json} (target: {TARGET_SIMULATIONS:,} simulations in {TARGET_S:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
