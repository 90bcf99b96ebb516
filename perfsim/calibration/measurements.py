"""Real measurements as prediction targets: the bundled CSV and ``vllm bench serve --save-result`` JSON.

Each ``Measurement`` maps to one ``perfsim predict`` scenario (model, GPU, precision, deployment, bench
flags) and one metric of its result, with the scope the value was reported in (per GPU, per deployment,
per request). Settings a source does not state are filled only by explicit, printed assumptions; a row
whose scenario stays unknown (e.g. no concurrency) is kept with the reason and never guessed.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfsim.calibration.bench_json import load_bench_json
from perfsim.calibration.csv_table import load_csv
from perfsim.calibration.measurement import (
    METRIC_CLASS,
    Measurement,
    apply_overrides,
    check_scenario,
    metric_class,
    normalize_setup,
    parse_parallel,
)
from perfsim.calibration.source_table import is_source_table, load_source_table
from perfsim.errors import SpecError
from perfsim.paths import data_dir
from perfsim.specs.loading import load_yaml_file, read_text

__all__ = [
    "METRIC_CLASS",
    "Measurement",
    "ScenarioTable",
    "default_measurement_files",
    "load_bench_json",
    "load_csv",
    "load_measurements",
    "metric_class",
    "normalize_setup",
    "parse_parallel",
]


def default_measurement_files() -> list[Path]:
    """The measurement tables bundled with perfsim (``measurements/*.csv``)."""
    return sorted(data_dir("measurements").glob("*.csv"))


def _header(path: Path) -> list[str]:
    first = read_text(path).splitlines()[:1]
    return next(csv.reader(first), []) if first else []


def load_measurements(
    paths: Sequence[str | Path] | None = None,
    *,
    assume: dict[str, Any] | None = None,
    setup: dict[str, Any] | None = None,
) -> list[Measurement]:
    """Measurements from CSV files and bench-serve JSON files (default: the bundled measurements)."""
    files = [Path(p) for p in paths] if paths is not None else default_measurement_files()
    out: list[Measurement] = []
    for path in files:
        if not path.exists():
            raise SpecError("file not found", source=str(path))
        if path.is_dir():
            inside = sorted(path.glob("*.csv")) + sorted(path.glob("*.json"))
            if not inside:
                raise SpecError(
                    "no .csv measurement tables or .json bench-serve results in this folder", source=str(path)
                )
            out += load_measurements(inside, assume=assume, setup=setup)
        elif path.suffix == ".csv" and is_source_table(_header(path)):
            out += load_source_table(path)
        elif path.suffix == ".csv":
            out += load_csv(path, assume)
        elif path.suffix == ".json":
            sidecar = path.with_suffix(".yaml")
            run_setup = dict(load_yaml_file(sidecar)) if sidecar.exists() else {}
            run_setup.update(setup or {})
            rows = load_bench_json(path, run_setup)
            if assume:
                fixed = []
                for r in rows:
                    dep, bench, notes = dict(r.deployment), dict(r.bench or {}), list(r.assumptions)
                    apply_overrides(dep, bench, assume, notes)
                    check_scenario(dep, bench, str(path))
                    fixed.append(
                        Measurement(
                            **{**r.__dict__, "deployment": dep, "bench": bench, "assumptions": tuple(notes)}
                        )
                    )
                rows = fixed
            out += rows
        else:
            raise SpecError(
                "expected a .csv measurement table or a bench-serve .json result", source=str(path)
            )
    return out


@dataclass
class ScenarioTable:
    """Measurements grouped by the simulation they need."""

    rows: list[Measurement]
    scenarios: dict[tuple, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, r in enumerate(self.rows):
            if r.unknown is None:
                self.scenarios.setdefault(r.scenario_key(), []).append(i)
