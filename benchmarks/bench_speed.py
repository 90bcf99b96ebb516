#!/usr/bin/env python
"""Speed of perfsim's simulator: wall time of whole benchmark simulations and of sweeps.

Not a test (timings depend on the machine). Run it, read the table, compare with benchmarks/README.md:

    python benchmarks/bench_speed.py [--json benchmarks/speed.json] [--sweep-points 200]

Cases: the mixed headline workload (DeepSeek-V3.2 NVFP4 on 2 x GB300 TP2, ISL 2048 / OSL 1024,
concurrency 256) with 1,000 and 10,000 prompts, timed around the simulation only (specs loaded,
interpreter started and imports done before the clock starts); a 72-rank wide-EP instance with 10,000
prompts; a sweep of N points run in one process and with one process per CPU; and the import time of
``perfsim``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def simulate_case(num_prompts: int, repeats: int) -> dict:
    from perfsim.costs.memory import memory_plan
    from perfsim.costs.params import CostParams
    from perfsim.serving.simulate import simulate
    from perfsim.serving.workload import BenchConfig
    from perfsim.specs.deployment import Deployment, resolve_deployment
    from perfsim.specs.hardware import load_hardware
    from perfsim.specs.model import load_model

    model, hw = load_model("deepseek-v3.2", "fp4"), load_hardware("gb300")
    dep = resolve_deployment(Deployment(), model, hw, 2)
    plan = memory_plan(model, hw, dep)
    bench = BenchConfig(
        num_prompts=num_prompts, random_input_len=2048, random_output_len=1024, max_concurrency=256
    )
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = simulate(model, hw, dep, plan, CostParams(), bench)
        walls.append(time.perf_counter() - t0)
    steps = sum(e.steps for e in result.engines.values())
    wall = sorted(walls)[len(walls) // 2]
    return {
        "case": f"mixed headline, {num_prompts} prompts",
        "prompts": num_prompts,
        "engine_steps": steps,
        "wall_s": wall,
        "steps_per_s": steps / wall,
        "requests_per_s": num_prompts / wall,
        "simulated_s": result.duration_s,
        "repeats": repeats,
    }


def wide_ep_case(num_prompts: int, ranks: int = 72) -> dict:
    """DeepSeek-R1 NVFP4 on a GB300 NVL72 rack as one DP72/EP72 instance (EPLB, 32 redundant experts, DeepEP
    low latency), ISL 1000 / OSL 1000, 128 requests per rank."""
    from perfsim.costs.memory import memory_plan
    from perfsim.costs.params import CostParams
    from perfsim.serving.simulate import simulate
    from perfsim.serving.workload import BenchConfig
    from perfsim.specs.deployment import Deployment, resolve_deployment
    from perfsim.specs.hardware import load_hardware
    from perfsim.specs.model import load_model

    model, hw = load_model("deepseek-r1", "fp4"), load_hardware("gb300")
    dep = resolve_deployment(
        Deployment(
            data_parallel_size=ranks,
            enable_expert_parallel=True,
            enable_eplb=True,
            eplb_config={"num_redundant_experts": 32},
            all2all_backend="deepep_low_latency",
        ),
        model,
        hw,
        1,
    )
    plan = memory_plan(model, hw, dep)
    bench = BenchConfig(
        num_prompts=num_prompts, random_input_len=1000, random_output_len=1000, max_concurrency=128 * ranks
    )
    t0 = time.perf_counter()
    result = simulate(model, hw, dep, plan, CostParams(), bench)
    wall = time.perf_counter() - t0
    steps = sum(e.steps for e in result.engines.values())
    return {
        "case": f"wide EP, DP{ranks}/EP{ranks}, {num_prompts} prompts",
        "prompts": num_prompts,
        "engine_steps": steps,
        "wall_s": wall,
        "steps_per_s": steps / wall,
        "requests_per_s": num_prompts / wall,
        "simulated_s": result.duration_s,
        "repeats": 1,
    }


def sweep_case(points: int, workers: int) -> dict:
    from perfsim.sweeps import sweep

    conc = [4, 8, 16, 32, 64, 96, 128, 192, 256, 384]
    isl = [512, 1024, 2048, 4096, 8192]
    osl = [64, 256, 512, 1024]
    grid = {"max_concurrency": conc, "random_input_len": isl, "random_output_len": osl}
    from perfsim.sweeps import grid_points

    total = len(grid_points(grid))
    if points < total:  # trim the grid to the requested size, keeping its structure
        grid["random_output_len"] = osl[: max(1, points // (len(conc) * len(isl)))]
    t0 = time.perf_counter()
    result = sweep(grid, base={"num_prompts": 200}, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    failed = sum(1 for r in result.records if r.get("error"))
    return {
        "case": f"sweep, {len(result)} points, {workers} process(es)",
        "points": len(result),
        "workers": workers,
        "wall_s": wall,
        "points_per_s": len(result) / wall,
        "failed": failed,
    }


def import_time() -> dict:
    code = "import time; t = time.perf_counter(); import perfsim; print(time.perf_counter() - t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(5)]
    return {"case": "import perfsim", "wall_s": sorted(runs)[2]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="benchmarks/speed.json", help="Where to write the results.")
    ap.add_argument("--sweep-points", type=int, default=200, help="Points of the sweep case.")
    ap.add_argument(
        "--repeats", type=int, default=7, help="Repeats of the 1,000-prompt case (median reported)."
    )
    ap.add_argument("--quick", action="store_true", help="Skip the 10,000-prompt case and the sweeps.")
    args = ap.parse_args()

    rows = [import_time(), simulate_case(1000, args.repeats)]
    if not args.quick:
        rows.append(simulate_case(10_000, 1))
        rows.append(wide_ep_case(10_000))
        rows.append(sweep_case(args.sweep_points, 1))
        rows.append(sweep_case(args.sweep_points, os.cpu_count() or 1))
    print(f"{'case':<45} {'wall s':>9} {'steps/s':>10} {'req/s':>9} {'points/s':>9}")
    for r in rows:
        print(
            f"{r['case']:<45} {r['wall_s']:>9.3f} {r.get('steps_per_s', float('nan')):>10.0f} "
            f"{r.get('requests_per_s', float('nan')):>9.0f} {r.get('points_per_s', float('nan')):>9.2f}"
        )
    ratios = {}
    sims = [r for r in rows if "prompts" in r and not r["case"].startswith("wide EP")]
    if len(sims) == 2:
        ratios["10k_over_1k_wall"] = sims[1]["wall_s"] / sims[0]["wall_s"]
        print(
            f"\n10,000 / 1,000 prompts wall-time ratio: {ratios['10k_over_1k_wall']:.1f} (linear growth = 10)"
        )
    sweeps = [r for r in rows if "points" in r]
    if len(sweeps) == 2:
        ratios["sweep_parallel_speedup"] = sweeps[0]["wall_s"] / sweeps[1]["wall_s"]
        ratios["sweep_1000_points_estimate_s"] = sweeps[1]["wall_s"] * 1000 / sweeps[1]["points"]
        print(
            f"sweep speed-up with {sweeps[1]['workers']} processes: {ratios['sweep_parallel_speedup']:.2f}x; "
            f"1,000 points would take ~{ratios['sweep_1000_points_estimate_s']:.0f} s"
        )
    out = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "results": rows,
        "ratios": ratios,
    }
    with open(args.json, "w") as fh:
        json.dump(out, fh, indent=2)
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
