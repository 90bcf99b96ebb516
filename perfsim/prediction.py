"""The main job: predict what ``vllm bench serve`` would measure for a deployment, as a result object.

``predict(...)`` resolves the specs, checks the memory plan, picks the cost parameters (a calibration profile
or spec-only), simulates the benchmark (``perfsim.serving.scenario``) and returns a ``Prediction`` whose
``result`` dict has every key of ``vllm bench serve --save-result`` (0.14.1) plus perfsim's own: per-GPU
figures, the resolved config, the step-time breakdown, scheduler counters, provenance and error band.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perfsim.calibration.bands import prediction_band
from perfsim.calibration.profiles import load_params
from perfsim.costs.memory import MemoryPlan, plan_deployment
from perfsim.costs.params import CostParams
from perfsim.errors import SpecError
from perfsim.report_predict import format_prediction, prediction_html
from perfsim.serving.scenario import run_scenario
from perfsim.serving.simulate import SimulationResult
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import Deployment, ResolvedDeployment
from perfsim.specs.hardware import HardwareSpec, load_hardware
from perfsim.specs.loading import build_settings
from perfsim.specs.model import Model, load_model

#: The two published headline scenarios of DeepSeek-V3.2 NVFP4 on GB300 (vLLM blog, 2026-02-13).
HEADLINE_SCENARIOS: dict[str, BenchConfig] = {
    "prefill-only ISL 2048 / OSL 1": BenchConfig(
        random_input_len=2048, random_output_len=1, max_concurrency=64, num_prompts=1000
    ),
    "mixed ISL 2048 / OSL 1024": BenchConfig(
        random_input_len=2048, random_output_len=1024, max_concurrency=256, num_prompts=1000
    ),
}

#: the note of a prediction whose workload has a shared random prefix
PREFIX_CACHING_NOTE = (
    "prefix caching is not modelled: the shared random prefix is recomputed for every request "
    "(vLLM would serve it from its prefix cache)"
)


#: metrics whose range over seeds a seed band reports
SEED_BAND_METRICS = (
    "total_token_throughput",
    "output_throughput",
    "mean_ttft_ms",
    "median_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_itl_ms",
)


def seed_range(results: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """[min, max] of each of ``SEED_BAND_METRICS`` over results of the same scenario run with ``seeds``."""
    band: dict[str, Any] = {"seeds": seeds}
    for key in SEED_BAND_METRICS:
        values = [r[key] for r in results if key in r]
        if values:
            band[key] = [min(values), max(values)]
    return band


@dataclass
class Prediction:
    """One predicted benchmark run: bench-serve metrics plus perfsim's explanations."""

    label: str
    result: dict[str, Any]
    model: Model
    hw: HardwareSpec
    deployment: ResolvedDeployment
    plan: MemoryPlan
    bench: BenchConfig
    simulation: SimulationResult
    notes: list[str] = field(default_factory=list)

    @property
    def num_gpus(self) -> int:
        """Every GPU of the deployment."""
        return self.deployment.num_gpus

    def __getitem__(self, key: str) -> Any:
        return self.result[key]

    def summary(self) -> str:
        """Human-readable summary in the shape of ``vllm bench serve``'s, with per-GPU figures."""
        return format_prediction(self.result, self.label, self.notes)

    def _repr_html_(self) -> str:
        """The summary as a table, for Jupyter."""
        return prediction_html(self.result, self.label, self.notes)


#: seeds one prediction may run for its band (each is a whole simulation)
MAX_SEED_BAND = 64


def predict(
    model: str | Model = "deepseek-v3.2",
    hw: str | HardwareSpec = "gb300",
    precision: str = "auto",
    deployment: Deployment | dict | None = None,
    bench: BenchConfig | dict | None = None,
    *,
    params: CostParams | None = None,
    calibration: str | None = "default",
    label: str = "",
    progress: bool = False,
    seed_band: int = 1,
) -> Prediction:
    """Predict one ``vllm bench serve`` run.

    ``model``/``hw`` are names, paths or loaded specs; ``deployment`` and ``bench`` take the vLLM flag names
    as fields. ``params`` overrides the cost parameters; otherwise ``calibration`` names a profile
    ('default' picks the vLLM profile, 'none' the spec-only prediction). ``seed_band`` > 1 also runs the
    next ``seed_band - 1`` seeds (``--seed``: prompt lengths, arrivals, run-to-run jitter of front end and steps)
    and reports in ``result['seed_band']`` each headline metric's range over the seeds.
    """
    if not 1 <= seed_band <= MAX_SEED_BAND:
        raise SpecError(f"seed_band must be 1 to {MAX_SEED_BAND}, got {seed_band}", field="seed_band")
    m = model if isinstance(model, Model) else load_model(model, precision)
    gpu = hw if isinstance(hw, HardwareSpec) else load_hardware(hw)
    dep = (
        deployment
        if isinstance(deployment, Deployment)
        else build_settings(Deployment, deployment, "deployment")
    )
    cfg = bench if isinstance(bench, BenchConfig) else build_settings(BenchConfig, bench, "bench")
    resolved, plan = plan_deployment(m, gpu, dep)
    if params is None:
        params, provenance = load_params(calibration, gpu)
    else:
        provenance = "custom parameters"
        calibration = None
    run = run_scenario(m, gpu, resolved, plan, params, cfg, label=label, progress=progress)
    result = run.result
    notes = list(resolved.notes)
    if cfg.random_prefix_len:
        notes.append(PREFIX_CACHING_NOTE)
    if provenance == "custom parameters":
        band: dict[str, Any] = {"provenance": "custom parameters", "error_band": None, "notes": []}
    else:
        band = prediction_band(calibration, m, gpu, resolved, cfg)
    result["prediction"] = {"calibration": provenance, **band}
    if seed_band > 1:
        others = [
            run_scenario(m, gpu, resolved, plan, params, cfg.model_copy(update={"seed": cfg.seed + k})).result
            for k in range(1, seed_band)
        ]
        result["seed_band"] = seed_range([result, *others], [cfg.seed + k for k in range(seed_band)])
    notes += band.get("notes", [])
    result["notes"] = notes
    return Prediction(
        label=label,
        result=result,
        model=m,
        hw=gpu,
        deployment=resolved,
        plan=plan,
        bench=cfg,
        simulation=run.simulation,
        notes=notes,
    )
