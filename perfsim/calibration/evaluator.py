"""Predict every measurement row for given parameter values: one simulation (or probe) per scenario.

Parameter values are a flat mapping of keys (``perfsim.calibration.param_space``): each scenario runs with
the parameters of its GPU's generation, so Blackwell kernel efficiencies never reach a Hopper row. A
``CostParams`` instead applies as given to every row.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from perfsim.calibration.measurement import Measurement
from perfsim.calibration.param_space import params_for
from perfsim.calibration.run_settings import with_settings
from perfsim.costs.memory import memory_plan
from perfsim.costs.params import CostParams
from perfsim.costs.probe import probe_time_s
from perfsim.costs.step import StepCostModel
from perfsim.errors import PerfsimError
from perfsim.serving.scenario import run_named_scenario
from perfsim.serving.steady_decode import decode_steady_state
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.hardware import load_hardware
from perfsim.specs.loading import build_settings
from perfsim.specs.model import load_model

#: simulation processes of a calibration: scenarios are few, and more workers than this mostly add start-up
MAX_WORKERS = 4

ParamValues = Mapping[str, float]


class ValuesByVersion(dict):
    """Profile values per vLLM version (``{'0.14.1': {...}, '0.13.0': {...}}``): each row runs with those of the
    engine version that served it, or those of ``fallback`` when its version has none."""

    def __init__(self, by_version: Mapping[str, ParamValues], fallback: str):
        super().__init__(by_version)
        self.fallback = fallback

    def for_version(self, version: str) -> ParamValues:
        """The values of ``version``."""
        return self.get(version, self[self.fallback])


@functools.lru_cache(maxsize=64)
def hardware_generation(hw: str) -> str:
    """The GPU generation of a hardware name or file."""
    return load_hardware(hw).generation


def scenario_result(row: Measurement, params: CostParams) -> dict[str, Any]:
    """The result a row's value is read from: a bench-serve result, a decode steady state or a kernel probe."""
    model = load_model(row.model, row.precision).with_module_dtypes(dict(row.module_dtypes))
    if row.kind == "serving":
        assert row.bench is not None
        return run_named_scenario(model, row.hw, row.deployment, row.bench, params)
    hw = load_hardware(row.hw)
    bench = row.bench or {}
    if row.kind == "kernel":
        sequences = int(bench["max_concurrency"])
        seconds = probe_time_s(row.kernel_op, model, hw, params, sequences, int(bench["random_input_len"]))
        return {"kernel_latency_us": seconds * 1e6}
    dep = build_settings(Deployment, row.deployment, "deployment")
    resolved = resolve_deployment(dep, model, hw, dep.tensor_parallel_size or 1)
    plan = memory_plan(model, hw, resolved)
    costs = StepCostModel(model, hw, resolved, params)
    return decode_steady_state(costs, plan, int(bench["random_input_len"]), int(bench["random_output_len"]))


def _predict(job: tuple[Measurement, dict[str, float]]) -> dict[str, Any]:
    row, values = job
    return scenario_result(row, CostParams(**values))


class Evaluator:
    """Predicts every measurement row for given parameter values (one scenario per distinct setting)."""

    def __init__(self, rows: Sequence[Measurement], workers: int | None = None):
        self.rows = list(rows)
        self.scenarios: dict[tuple, list[int]] = {}
        for i, r in enumerate(self.rows):
            if r.unknown is None:
                self.scenarios.setdefault(r.scenario_key(), []).append(i)
        self.workers = workers if workers is not None else min(os.cpu_count() or 1, MAX_WORKERS)
        self._pool: ProcessPoolExecutor | None = None

    def generations(self) -> set[str]:
        """The GPU generations of the rows that can be predicted."""
        return {hardware_generation(r.hw) for r in self.rows if r.unknown is None}

    def params_of(self, row: Measurement, values: ParamValues | CostParams) -> CostParams:
        """The parameters a row runs with."""
        if isinstance(values, CostParams):
            return values
        if isinstance(values, ValuesByVersion):
            values = values.for_version(row.engine_version)
        return params_for(values, hardware_generation(row.hw))

    def predict(
        self,
        values: ParamValues | CostParams,
        mask: np.ndarray | None = None,
        settings: Mapping[str, int] | None = None,
    ) -> np.ndarray:
        """Predicted value per row (NaN where unknown, or outside ``mask`` when one is given); ``settings``: the
        fitted values of named unknown run settings (``perfsim.calibration.run_settings``)."""
        keys = [k for k, idx in self.scenarios.items() if mask is None or any(mask[i] for i in idx)]
        jobs = []
        for key in keys:
            row = self.rows[self.scenarios[key][0]]
            jobs.append((with_settings(row, settings), self.params_of(row, values).model_dump()))
        if self.workers > 1 and len(jobs) > 1:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers)
            pending = self._pool.map(_predict, jobs, chunksize=max(1, len(jobs) // (4 * self.workers)))
        else:
            pending = map(_predict, jobs)
        out = np.full(len(self.rows), np.nan)
        for key in keys:
            try:
                result = next(pending)
            except PerfsimError as exc:  # name the measurement row whose settings cannot be simulated
                raise PerfsimError(f"{self.rows[self.scenarios[key][0]].source}: {exc}") from None
            for i in self.scenarios[key]:
                out[i] = self.rows[i].predicted(result)
        return out

    def close(self) -> None:
        """Stop worker processes."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
