"""perfsim: predict vLLM serving throughput and latency of MoE LLMs on GPUs before renting them.

Python API (names are imported lazily, so ``import perfsim`` stays fast)::

    import perfsim
    hw = perfsim.hardware("gb300").scaled(hbm_bandwidth=1.5)      # a hypothetical GPU
    model = perfsim.model("deepseek-v3.2", precision="fp4")
    pred = perfsim.predict(model, hw, deployment={"tensor_parallel_size": 2},
                           bench={"random_input_len": 2048, "random_output_len": 1024, "max_concurrency": 256})
    pred["output_throughput"], pred.result["mean_tpot_ms"], pred.summary()
    table = perfsim.sweep({"max_concurrency": [16, 64, 256], "precision": ["fp4", "fp8"]})
    best = perfsim.plan("deepseek-v3.2", "gb300", max_gpus=8, goodput=[["ttft:3000", "tpot:60"]])

``predict`` returns a ``Prediction`` (metrics as in ``vllm bench serve --save-result`` plus per-GPU
figures, step-time breakdown, provenance and error band); ``sweep`` returns one flat record per grid
point (``to_dataframe()`` with pandas); ``plan`` returns a ``PlanResult`` (candidates, pruned deployments and one
recommendation per SLO set; ``to_dataframe()``, ``to_json()``, a table in Jupyter).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "predict": ("perfsim.prediction", "predict"),
    "Prediction": ("perfsim.prediction", "Prediction"),
    "HEADLINE_SCENARIOS": ("perfsim.prediction", "HEADLINE_SCENARIOS"),
    "sweep": ("perfsim.sweeps", "sweep"),
    "plan": ("perfsim.planning", "plan"),
    "PlanResult": ("perfsim.planning", "PlanResult"),
    "SweepResult": ("perfsim.sweeps", "SweepResult"),
    "hardware": ("perfsim.specs.hardware", "load_hardware"),
    "known_hardware": ("perfsim.specs.hardware", "known_hardware"),
    "HardwareSpec": ("perfsim.specs.hardware", "HardwareSpec"),
    "model": ("perfsim.specs.model", "load_model"),
    "known_models": ("perfsim.specs.model", "known_models"),
    "Deployment": ("perfsim.specs.deployment", "Deployment"),
    "BenchConfig": ("perfsim.serving.workload", "BenchConfig"),
    "CostParams": ("perfsim.costs.params", "CostParams"),
    "StepCostModel": ("perfsim.costs.step", "StepCostModel"),
    "explain_step": ("perfsim.api", "explain_step"),
    "memory_plan": ("perfsim.api", "memory_plan"),
    "load_measurements": ("perfsim.calibration.measurements", "load_measurements"),
    "validate": ("perfsim.api", "validate"),
    "plots": ("perfsim.plots", None),
    "PerfsimError": ("perfsim.errors", "PerfsimError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'perfsim' has no attribute '{name}'")
    module_name, attr = _LAZY[name]
    module = import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
