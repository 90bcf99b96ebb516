"""``perfsim.plan``: simulate every deployment of a search space at every concurrency, find the frontier of
throughput per GPU against throughput per user, and recommend a deployment per SLO set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfsim import __version__
from perfsim.errors import SpecError
from perfsim.executors import Executor, Journal, make_executor, run_all
from perfsim.frontier import pareto_front
from perfsim.planning.candidates import enumerate_candidates
from perfsim.planning.config import PlanConfig
from perfsim.planning.evaluate import evaluate_point
from perfsim.planning.recommend import recommend
from perfsim.report_predict import records_html
from perfsim.specs.setup import Setup

#: plans above this many simulations must be confirmed (``max_points=``, ``--yes``)
LARGE_PLAN_POINTS = 5_000
#: seconds per simulated engine step when a simulation goes step by step (MTP: random acceptance), and the
#: share of that left when engines batch identical decode steps (aggregated; P/D, whose prefill engines still
#: step one by one), measured on this project's 2-core CI VM
STEP_S, BLOCKED_SHARE, PD_SHARE, SIMULATION_S = 0.4e-3, 0.05, 0.15, 0.03
#: the batch assumed for a plan point given by request rate (its real batch is only known by simulating it)
RATE_POINT_BATCH = 64
#: settings columns of the candidate table, in this order
SETTING_COLUMNS = (
    "tensor_parallel_size",
    "data_parallel_size",
    "enable_expert_parallel",
    "all2all_backend",
    "enable_dbo",
    "enable_eplb",
    "num_instances",
    "num_prefill_instances",
    "num_decode_instances",
    "num_speculative_tokens",
    "max_num_batched_tokens",
    "max_num_seqs",
)


def shape_of(settings: dict[str, Any]) -> str:
    """A deployment in a few words: 'tp2 dp4 EP deepep_low_latency DBO MTP1 2P1D'."""
    words = [f"tp{settings['tensor_parallel_size']}"]
    if settings.get("data_parallel_size", 1) > 1:
        words.append(f"dp{settings['data_parallel_size']}")
    if settings.get("enable_expert_parallel"):
        words.append("EP")
    if settings.get("all2all_backend") not in (None, "allgather_reducescatter"):
        words.append(settings["all2all_backend"])
    words += [w for w, key in (("DBO", "enable_dbo"), ("EPLB", "enable_eplb")) if settings.get(key)]
    if settings.get("num_speculative_tokens"):
        words.append(f"MTP{settings['num_speculative_tokens']}")
    if settings.get("num_prefill_instances"):
        words.append(f"{settings['num_prefill_instances']}P{settings['num_decode_instances']}D")
        if settings.get("decode_data_parallel_size"):
            backend = settings.get("decode_all2all_backend")
            words.append(f"(D: dp{settings['decode_data_parallel_size']}{' ' + backend if backend else ''})")
    elif settings.get("num_instances", 1) > 1:
        words.append(f"x{settings['num_instances']}")
    for key, word in (("max_num_batched_tokens", "budget"), ("max_num_seqs", "seqs")):
        if settings.get(key):
            words.append(f"{word}{settings[key]}")
    return " ".join(words)


@dataclass
class PlanResult:
    """A plan: every simulated candidate (one per deployment and concurrency), the pruned deployments with
    vLLM's reason, and one recommendation per SLO set."""

    plan: dict[str, Any]
    candidates: list[dict[str, Any]]
    pruned: list[dict[str, Any]]
    recommended: list[dict[str, Any]]

    def __repr__(self) -> str:
        ok = sum(1 for c in self.candidates if c["error"] is None)
        return (
            f"PlanResult({self.plan['model']} on {self.plan['hw']}: {ok} candidates simulated, "
            f"{len(self.pruned)} deployments pruned, {len(self.recommended)} recommendation(s))"
        )

    def to_json(self) -> str:
        """The plan as JSON (``candidates`` and ``recommended``), the same bytes on every executor."""
        body = {
            "plan": self.plan,
            "candidates": self.candidates,
            "recommended": self.recommended,
            "pruned": self.pruned,
        }
        return json.dumps(body, indent=2, allow_nan=False, default=_no_nan) + "\n"

    def rows(self) -> list[dict[str, Any]]:
        """Flat candidate rows (settings as columns), for tables and CSV."""
        out = []
        for c in self.candidates:
            row = {"id": c["id"], "shape": c["shape"], "num_gpus": c.get("num_gpus")}
            row.update({k: c["settings"].get(k) for k in SETTING_COLUMNS})
            row.update(
                {k: v for k, v in c.items() if k not in ("id", "shape", "num_gpus", "settings", "bench")}
            )
            out.append(row)
        return out

    def to_dataframe(self):
        """The candidates as a pandas DataFrame, one row per deployment and concurrency."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def write_csv(self, path: str) -> None:
        """The candidate rows as CSV."""
        self.to_dataframe().to_csv(path, index=False)

    def _repr_html_(self) -> str:
        picks = [
            {k: r.get(k) for k in ("goodput", "shape", "num_gpus", "load", "score_value", "reason")}
            for r in self.recommended
        ]
        return f"<h4>Recommended</h4>{records_html(picks)}<h4>Candidates</h4>{records_html(self.rows(), 30)}"


def _no_nan(value: Any) -> Any:
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """NaN (no TPOT for one-token outputs) as None, so the JSON stays standard."""
    if isinstance(value, float) and value != value:
        return None
    return value


def load_label(load: dict[str, Any]) -> str:
    """'concurrency 64', '4 req/s' or '4 req/s, concurrency <= 64'."""
    rate, cap = load.get("request_rate"), load.get("max_concurrency")
    if rate is None:
        return f"concurrency {cap}"
    return f"{rate:g} req/s" + (f", concurrency <= {cap}" if cap is not None else "")


def estimated_plan_s(stubs: list[dict[str, Any]], workers: int) -> float:
    """A rough wall time of the plan's simulations in seconds: engine steps x the time of one, per worker."""
    total = 0.0
    for stub in stubs:
        settings, bench = stub["settings"], stub["bench"]
        batch = min(bench.get("max_concurrency") or RATE_POINT_BATCH, bench["num_prompts"])
        steps = bench["num_prompts"] * bench["random_output_len"] / batch
        if settings.get("num_speculative_tokens"):
            share = 1.0
        else:
            share = PD_SHARE if settings.get("num_prefill_instances") else BLOCKED_SHARE
        total += SIMULATION_S + steps * STEP_S * share
    return total / max(workers, 1)


def plan_points(setup: Setup, cfg: PlanConfig, calibration: str) -> tuple[list[dict], list[dict], list[dict]]:
    """(candidate stubs, their simulation points, pruned deployments) of a plan, before any simulation."""
    model, hw = setup.load()
    fitting, pruned = enumerate_candidates(model, hw, cfg)
    if not fitting:
        reasons = sorted({f"{shape_of(p.settings)}: {p.reason}" for p in pruned})[:3]
        raise SpecError(
            "no deployment of the search space can run"
            + (f" ({len(pruned)} pruned; e.g. {'; '.join(reasons)})" if pruned else " (the space is empty)")
        )
    bench_base = cfg.model_dump(
        include={"random_input_len", "random_output_len", "random_range_ratio", "num_prompts", "seed"}
    )
    slos = cfg.slo_sets_ms()
    stubs: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    for candidate in fitting:
        for load in cfg.loads():
            bench = {**bench_base, **load}
            concurrency = load.get("max_concurrency")
            stubs.append(
                {
                    "id": len(stubs),
                    "shape": shape_of(candidate.settings),
                    "settings": candidate.settings,
                    "bench": bench,
                    "max_concurrency": concurrency,
                    "request_rate": load.get("request_rate"),
                    "load": load_label(load),
                }
            )
            points.append(
                {
                    "setup": setup.model_dump(exclude_defaults=True),
                    "deployment": candidate.settings,
                    "bench": bench,
                    "slos": slos,
                    "calibration": calibration,
                }
            )
    pruned_rows = [
        {"shape": shape_of(p.settings), "num_gpus": p.num_gpus, "settings": p.settings, "reason": p.reason}
        for p in pruned
    ]
    return stubs, points, pruned_rows


def plan(
    model: str = "deepseek-v3.2",
    hw: str = "gb300",
    precision: str = "auto",
    *,
    quantization: str | None = None,
    calibration: str = "default",
    executor: Executor | str | None = None,
    workers: int | None = None,
    journal: str | None = None,
    keep_journal: bool = False,
    progress: bool = True,
    max_points: int | None = LARGE_PLAN_POINTS,
    **space: Any,
) -> PlanResult:
    """Plan a deployment of ``model`` on ``hw`` for a workload and SLOs; ``space`` takes ``PlanConfig``'s fields
    (``max_gpus``, ``tensor_parallel_size=[2, 4]``, ``random_input_len``, ``max_concurrency=[16, 64]``,
    ``goodput=[["ttft:3000", "tpot:60"]]``, ...). ``executor``: local (default), dask, ray or an address;
    ``journal``: a file that keeps finished simulations, so an interrupted plan resumes where it stopped (removed
    at the end unless ``keep_journal``: the CLI removes it only once its outputs are written)."""
    setup = Setup.model_validate(
        {"model": model, "hw": hw, "precision": precision, "quantization": quantization}
    )
    cfg = PlanConfig(**space)
    stubs, points, pruned = plan_points(setup, cfg, calibration)
    if max_points is not None and len(points) > max_points:
        raise SpecError(
            f"the plan has {len(points):,} simulations, more than {max_points:,}: confirm it "
            f"(max_points={len(points)}, or --yes)"
        )
    runner = (
        executor
        if executor is not None and not isinstance(executor, str)
        else make_executor(executor, workers)
    )
    book = Journal(Path(journal), points) if journal else None
    try:
        results = run_all(evaluate_point, points, runner, journal=book, progress=progress, description="plan")
    finally:
        if runner is not executor:
            runner.close()
    failed = [r["error"] for r in results if r["error"] is not None]
    if results and len(failed) == len(results):
        raise SpecError(f"no candidate could be simulated: {failed[0]}")
    candidates = [
        {**stub, **{k: _clean(v) for k, v in result.items()}}
        for stub, result in zip(stubs, results, strict=True)
    ]
    ok = [c for c in candidates if c["error"] is None]
    front = {
        ok[i]["id"]
        for i in pareto_front(
            [c["output_tok_s_per_user"] or float("nan") for c in ok], [c["output_tok_s_per_gpu"] for c in ok]
        )
    }
    for c in candidates:
        c["on_frontier"] = c["id"] in front
    model_spec, _hw = setup.load()
    checkpoint = model_spec.recipe.checkpoint.split(" ")[0]
    slo_sets = cfg.slo_sets_ms()
    recommended = [
        recommend(candidates, k, pairs, cfg.slo_attainment, checkpoint, quantization, slo_sets[k])
        for k, pairs in enumerate(cfg.goodput or [])
    ] or [recommend(candidates, None, None, cfg.slo_attainment, checkpoint, quantization)]
    summary = {
        "model": model,
        "hw": hw,
        "precision": model_spec.precision,
        "checkpoint": checkpoint,
        "calibration": calibration,
        "space": cfg.model_dump(),
        "simulations": len(points),
        "perfsim_version": __version__,
    }
    if book is not None and not keep_journal:
        book.remove()
    return PlanResult(plan=summary, candidates=candidates, pruned=pruned, recommended=recommended)
