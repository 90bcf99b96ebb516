#!/usr/bin/env python
"""Do the tests catch wrong code? Apply one-line bugs, one at a time, and check that ``pytest`` fails.

Each mutation is applied to a fresh copy of the working tree (the checkout itself is never touched), and the
copy's tests run against the copy's code. A mutation that leaves every test passing is reported as SURVIVED
and the script exits 1. Not a test (it runs the suite once per mutation, a few minutes in all)::

    python tools/mutation_check.py [--only NAME] [--baseline]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".import_linter_cache",
    "*.egg-info",
)


@dataclass(frozen=True)
class Mutation:
    """One deliberately wrong line: in ``path``, ``old`` (which must occur once) becomes ``new``."""

    name: str
    path: str
    old: str
    new: str


MUTATIONS = [
    Mutation(
        "admit waiting requests in a step that preempted",
        "perfsim/serving/scheduler.py",
        "if not num_preempted:  # vLLM admits nothing in a step that preempted",
        "if True:",
    ),
    Mutation(
        "DP load balancer weighs waiting requests 1 instead of 4",
        "perfsim/serving/router.py",
        "DP_LB_WAITING_WEIGHT = 4",
        "DP_LB_WAITING_WEIGHT = 1",
    ),
    Mutation(
        "decode-block step times held constant",
        "perfsim/costs/decode_block.py",
        "times = np.linspace(first.total_s, last.total_s, steps)",
        "times = np.full(steps, first.total_s)",
    ),
    Mutation(
        "only the first MTP draft position can be accepted",
        "perfsim/serving/spec_decode.py",
        "return np.cumprod(hits, axis=1).sum(axis=1).astype(np.int64)",
        "return hits[:, :1].sum(axis=1).astype(np.int64)",
    ),
    Mutation(
        "a watched decode block ignores async scheduling's one-step lookahead",
        "perfsim/serving/engine.py",
        "lag = 1 if self.async_scheduling else 0",
        "lag = 0",
    ),
    Mutation(
        "the Pareto front keeps points that another dominates",
        "perfsim/frontier.py",
        "if ys[i] > best_y:",
        "if ys[i] >= best_y - 1e300:",
    ),
    Mutation(
        "a plan recommends the candidate with the least goodput per GPU",
        "perfsim/planning/recommend.py",
        'best = max(eligible, key=lambda r: (r[score], -r["num_gpus"], -r["id"]))',
        'best = min(eligible, key=lambda r: (r[score], -r["num_gpus"], -r["id"]))',
    ),
    Mutation(
        "MXFP4 experts on Blackwell padded to 128 instead of 256",
        "perfsim/costs/mxfp4_moe.py",
        'PAD_ALIGN = {"trtllm": (256, 256), "marlin": (256, 128)}',
        'PAD_ALIGN = {"trtllm": (256, 128), "marlin": (256, 128)}',
    ),
    Mutation(
        "TRT-LLM-gen's MoE costs the real rows above its small tile",
        "perfsim/costs/mxfp4_moe.py",
        "return max(rows_per_expert, self.min_rows)",
        "return rows_per_expert",
    ),
    Mutation(
        "a decode step reads experts as if routing were uniform",
        "perfsim/costs/moe.py",
        "active = expected_active_experts(local_experts, moe.top_k / experts, moe_tokens, cv)",
        "active = expected_active_experts(local_experts, moe.top_k / experts, moe_tokens, 0.0)",
    ),
    Mutation(
        "a held-out fold predicts its rows with the run settings of the full fit's rows",
        "perfsim/calibration/crossval.py",
        "predicted = evaluator.predict({**fixed, **result.values}, mask=held_out, settings=settings)",
        "predicted = evaluator.predict({**fixed, **result.values}, mask=held_out, settings={'budget': 65536})",
    ),
    Mutation(
        "the first pick of run settings uses physics fitted on every row",
        "perfsim/calibration/settings_fit.py",
        "stated = mask & np.array([r.fitted_setting is None for r in rows])",
        "stated = mask.copy()",
    ),
    Mutation(
        "the default profile predicts Hopper with spec-only kernels although the 0.13.0 profile fitted them",
        "perfsim/calibration/profiles.py",
        "values = {**borrowed, **values_from_profile(profile, str(path))}",
        "values = values_from_profile(profile, str(path))",
    ),
]


def run_tests(tree: Path) -> subprocess.CompletedProcess:
    """pytest on a copy of the tree, importing the copy's perfsim."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )


def first_failure(output: str) -> str:
    """The first 'FAILED ...' line of pytest's summary."""
    for line in output.splitlines():
        if line.startswith("FAILED"):
            return line.split(" - ")[0]
    return output.strip().splitlines()[-1] if output.strip() else "(no output)"


def check(mutation: Mutation | None) -> bool:
    """True when the tests fail with the mutation (or pass without one)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(ROOT, tree, ignore=SKIP)
        if mutation is not None:
            target = tree / mutation.path
            text = target.read_text()
            if text.count(mutation.old) != 1:
                print(f"ERROR  {mutation.name}: the line to mutate is not in {mutation.path} exactly once")
                return False
            target.write_text(text.replace(mutation.old, mutation.new))
        result = run_tests(tree)
    if mutation is None:
        print(f"{'ok' if result.returncode == 0 else 'FAILED'}  baseline: {first_failure(result.stdout)}")
        return result.returncode == 0
    caught = result.returncode != 0
    print(
        f"{'CAUGHT ' if caught else 'SURVIVED'} {mutation.name}: {first_failure(result.stdout) if caught else ''}"
    )
    return caught


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run only the mutation whose name contains this text")
    parser.add_argument("--baseline", action="store_true", help="also check that the unmutated tests pass")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or args.only in m.name]
    ok = check(None) if args.baseline else True
    for m in chosen:
        ok = check(m) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
