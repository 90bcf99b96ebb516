"""Real measurements as prediction targets: the bundled CSV and ``vllm bench serve --save-result`` JSON.

Each ``Measurement`` maps to one ``perfsim predict`` scenario (model, GPU, precision, deployment, bench
flags) and one metric of its result, with the scope the value was reported in (per GPU, per deployment,
per request). Settings a source does not state are filled only by explicit, printed assumptions; a row
whose scenario stays unknown (e.g. no concurrency) is kept with the reason and never guessed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfsim.errors import SpecError
from perfsim.paths import data_dir
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import Deployment
from perfsim.specs.loading import load_yaml_file, read_text, validation_error_to_spec_error

METRIC_CLASS = {
    "total_token_throughput": "throughput",
    "output_throughput": "throughput",
    "request_throughput": "throughput",
    "max_output_tokens_per_s": "throughput",
}
#: latency metrics as `vllm bench serve --save-result` names them: mean/median/std/pNN of ttft, tpot, itl, e2el
LATENCY_METRIC = re.compile(r"(mean|median|std|p(\d+(?:\.\d+)?))_(ttft|tpot|itl|e2el)_ms")
#: percentiles every CSV scenario asks its simulation for (a row's own pNN is added when it is not here)
CSV_PERCENTILES = ("50", "90", "95", "99")


def metric_class(metric: str) -> str | None:
    """'throughput', 'ttft', 'tpot', 'itl' or 'e2el' for a bench-serve metric name; None when unknown."""
    if metric in METRIC_CLASS:
        return METRIC_CLASS[metric]
    m = LATENCY_METRIC.fullmatch(metric)
    return m[3] if m else None


SCOPES = ("per_gpu", "deployment", "request")
#: metrics taken from a bench-serve JSON when present (TPOT only when more than one output token)
JSON_METRICS = (
    "total_token_throughput",
    "output_throughput",
    "max_output_tokens_per_s",
    "mean_ttft_ms",
    "mean_tpot_ms",
)


@dataclass(frozen=True)
class Measurement:
    """One measured value and the scenario that produced it."""

    group: str
    model: str
    hw: str
    precision: str
    deployment: dict[str, Any]
    bench: dict[str, Any] | None  # None when the scenario is not fully known
    metric: str
    value: float
    scope: str
    source: str
    note: str = ""
    assumptions: tuple[str, ...] = ()
    unknown: str | None = None  # why this row cannot be predicted

    @property
    def metric_class(self) -> str:
        """throughput, ttft, tpot, itl or e2el."""
        return metric_class(self.metric) or "unknown"

    @property
    def label(self) -> str:
        """Short description for tables."""
        b = self.bench or {}
        conc = b.get("max_concurrency")
        return (
            f"{self.group} c={conc if conc else '?'} {self.metric}"
            f"{' /GPU' if self.scope == 'per_gpu' else ''}"
        )

    def scenario_key(self) -> tuple:
        """Rows with the same key share one simulation."""
        return (
            self.model,
            self.hw,
            self.precision,
            tuple(sorted(self.deployment.items())),
            tuple(sorted((self.bench or {}).items())),
        )

    def predicted(self, result: dict[str, Any]) -> float:
        """The value this row measured, read from a prediction's result dict in the same scope."""
        value = float(result[self.metric])
        return value / result["num_gpus"] if self.scope == "per_gpu" else value


def parse_parallel(text: str) -> dict[str, Any]:
    """'tp2', 'dp2+ep', 'tp4+mtp1', '1p1d-tp2' -> Deployment fields."""
    out: dict[str, Any] = {}
    for part in re.split(r"[+\-_ ]", text.strip().lower()):
        if not part:
            continue
        if m := re.fullmatch(r"tp(\d+)", part):
            out["tensor_parallel_size"] = int(m[1])
        elif m := re.fullmatch(r"dp(\d+)", part):
            out["data_parallel_size"] = int(m[1])
        elif part == "ep":
            out["enable_expert_parallel"] = True
        elif m := re.fullmatch(r"mtp(\d+)", part):
            out["num_speculative_tokens"] = int(m[1])
        elif m := re.fullmatch(r"(\d+)p(\d+)d", part):
            out["num_prefill_instances"], out["num_decode_instances"] = int(m[1]), int(m[2])
        else:
            raise SpecError(
                f"parallel '{text}': unknown part '{part}'; use tpN, dpN, ep, mtpN, NpMd joined by '+'",
                field="parallel",
            )
    if out.get("data_parallel_size") and "tensor_parallel_size" not in out:
        out["tensor_parallel_size"] = 1
    return out


def normalize_setup(setup: dict[str, Any], source: str) -> dict[str, Any]:
    """Setup keys in snake_case (``tensor-parallel-size`` works too); unknown keys are refused."""
    allowed = {"model", "hw", "precision", "group", *Deployment.model_fields, *BenchConfig.model_fields}
    out = {}
    for key, value in setup.items():
        k = str(key).strip().lstrip("-").replace("-", "_")
        if k not in allowed:
            raise SpecError(
                f"unknown setting '{key}'; use model, hw, precision, group, a vllm serve flag or a bench "
                "serve flag (e.g. tensor_parallel_size, max_concurrency)",
                source=source,
                field=str(key),
            )
        out[k] = value
    return out


def _check_scenario(dep: dict[str, Any], bench: dict[str, Any], source: str) -> None:
    """Validate a row's deployment and bench settings now, naming the file."""
    from pydantic import ValidationError

    for cls, values in ((Deployment, dep), (BenchConfig, bench)):
        try:
            cls(**values)
        except ValidationError as exc:
            raise validation_error_to_spec_error(exc, source) from None


def _check_sidecar(spec: dict[str, Any], source: str) -> None:
    """The sidecar's ``models``/``precisions`` are name maps and ``assumptions`` a list of rules."""
    for key in ("models", "precisions"):
        if not isinstance(spec.get(key) or {}, dict):
            raise SpecError("expected a mapping of CSV names to perfsim names", source=source, field=key)
    rules = spec.get("assumptions") or []
    if not isinstance(rules, list):
        raise SpecError(
            "expected a list of {match, deployment, bench, why} rules", source=source, field="assumptions"
        )
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or not all(
            isinstance(rule.get(k) or {}, dict) for k in ("match", "deployment", "bench")
        ):
            raise SpecError(
                "expected a mapping with 'match', 'deployment' and/or 'bench' mappings and 'why'",
                source=source,
                field=f"assumptions[{i}]",
            )


def _apply_assumptions(row: dict[str, str], dep: dict, bench: dict, spec: dict) -> list[str]:
    notes = []
    for rule in spec.get("assumptions", []) or []:
        match = rule.get("match", {})
        if all(str(row.get(k, "")) == str(v) for k, v in match.items()):
            for key, value in (rule.get("deployment") or {}).items():
                if key not in dep:
                    dep[key] = value
                    notes.append(f"{key}={value}: {rule.get('why', 'assumed')}")
            for key, value in (rule.get("bench") or {}).items():
                if key not in bench:
                    bench[key] = value
                    notes.append(f"{key}={value}: {rule.get('why', 'assumed')}")
    return notes


def _apply_overrides(dep: dict, bench: dict, assume: dict[str, Any], notes: list[str]) -> None:
    for key, value in assume.items():
        if key == "concurrency":
            key = "max_concurrency"
        if key in BenchConfig.model_fields:
            if bench.get(key) in (None, ""):
                bench[key] = value
                notes.append(f"{key}={value}: assumed on the command line")
        elif key in Deployment.model_fields:
            dep[key] = value
            notes.append(f"{key}={value}: set on the command line")
        else:
            raise SpecError(f"--assume {key}: not a vllm serve or bench serve setting")


#: precision names measurement files use for perfsim's --precision values
PRECISION_ALIASES = {
    "nvfp4": "fp4",
    "fp4": "fp4",
    "fp8": "fp8",
    "fp8_e4m3": "fp8",
    "bf16": "bf16",
    "bfloat16": "bf16",
}


def _sidecar_of(path: Path) -> tuple[Path, str | None]:
    """The CSV's YAML sidecar: the one beside it, else the bundled one of the same name (a copy of a bundled
    table moved elsewhere keeps the settings its source does not state), with a note saying so."""
    beside = path.with_suffix(".yaml")
    bundled = data_dir("measurements") / beside.name
    if not beside.exists() and bundled.exists():
        return bundled, f"settings the data do not state taken from perfsim's bundled {bundled.name}"
    return beside, None


def load_csv(path: Path, assume: dict[str, Any] | None = None) -> list[Measurement]:
    """Rows of a measurement CSV (see measurements/README.md), with its YAML sidecar's assumptions."""
    sidecar, sidecar_note = _sidecar_of(path)
    spec = load_yaml_file(sidecar) if sidecar.exists() else {}
    _check_sidecar(spec, str(sidecar))
    models, precisions = spec.get("models", {}) or {}, spec.get("precisions", {}) or {}
    out: list[Measurement] = []
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    required = {
        "group",
        "model",
        "precision",
        "hardware",
        "parallel",
        "isl",
        "osl",
        "metric",
        "value",
        "scope",
    }
    missing = required - set(reader.fieldnames or [])
    if missing:
        raise SpecError(f"missing columns {', '.join(sorted(missing))}", source=str(path))
    for line, row in enumerate(reader, start=2):
        where = f"{path.name}:{line}"
        if None in row or any(v is None for v in row.values()):  # csv's markers of extra / missing cells
            cells = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
            raise SpecError(
                f"{cells} cells where the header has {len(reader.fieldnames or [])}", source=where
            )
        try:
            metric = row["metric"].strip()
            if metric_class(metric) is None:
                raise SpecError(
                    f"metric '{metric}' unknown; allowed: {', '.join(METRIC_CLASS)}, or a latency as "
                    "bench serve saves it (mean/median/std/pNN of ttft, tpot, itl, e2el, e.g. "
                    "p99_ttft_ms)",
                    field="metric",
                )
            scope = row["scope"].strip()
            if scope not in SCOPES:
                raise SpecError(f"scope '{scope}' unknown; allowed: {', '.join(SCOPES)}", field="scope")
            dep = parse_parallel(row["parallel"])
            bench: dict[str, Any] = {
                "random_input_len": int(row["isl"]),
                "random_output_len": int(row["osl"]),
            }
            if row.get("num_prompts"):
                bench["num_prompts"] = int(row["num_prompts"])
            own = LATENCY_METRIC.fullmatch(metric)
            own_pct = [own[2]] if own and own[2] and own[2] not in CSV_PERCENTILES else []
            bench["percentile_metrics"] = "ttft,tpot,itl,e2el"
            bench["metric_percentiles"] = ",".join([*CSV_PERCENTILES, *own_pct])
            notes = _apply_assumptions(row, dep, bench, spec)
            if sidecar_note and notes:
                notes.append(sidecar_note)
            if row.get("concurrency", "").strip():
                bench["max_concurrency"] = int(row["concurrency"])
            _apply_overrides(dep, bench, assume or {}, notes)
            _check_scenario(dep, bench, where)
            unknown = (
                None
                if bench.get("max_concurrency") is not None
                else ("concurrency not stated (use --assume concurrency=N)")
            )
            value = float(row["value"])
            if not math.isfinite(value) or value <= 0:
                raise SpecError(f"value must be a positive number, got {row['value']}", field="value")
        except SpecError as exc:
            raise exc if exc.source else SpecError(str(exc), source=where) from None
        except ValueError as exc:
            raise SpecError(f"bad number ({exc})", source=where) from None
        out.append(
            Measurement(
                group=row["group"],
                model=models.get(row["model"], row["model"]),
                hw=row["hardware"],
                precision=precisions.get(
                    row["precision"],
                    PRECISION_ALIASES.get(row["precision"].strip().lower(), row["precision"]),
                ),
                deployment=dep,
                bench=None if unknown else bench,
                metric=metric,
                value=value,
                scope=scope,
                source=where,
                note=row.get("note", ""),
                assumptions=tuple(notes),
                unknown=unknown,
            )
        )
    return out


def load_bench_json(path: Path, setup: dict[str, Any]) -> list[Measurement]:
    """Rows from one ``vllm bench serve --save-result`` JSON; ``setup`` says what the JSON cannot.

    ``setup`` keys: ``model``, ``hw``, ``precision``, any ``vllm serve`` flag (Deployment field) and any bench
    flag (BenchConfig field). Missing ``random_input_len`` / ``random_output_len`` are inferred from the
    JSON's token totals (mean lengths; the input gets the tokenizer's special token back).
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(f"cannot read bench-serve JSON ({exc})", source=str(path)) from None
    if not isinstance(data, dict) or "completed" not in data:
        raise SpecError("not a vllm bench serve --save-result file (no 'completed' key)", source=str(path))
    setup = normalize_setup(setup, str(path.with_suffix(".yaml").name))
    missing = [k for k in ("model", "hw", "precision") if k not in setup]
    if missing:
        raise SpecError(
            f"say {', '.join(missing)} for this run in a sidecar {path.with_suffix('.yaml').name} or "
            f"with --set KEY=VALUE",
            source=str(path),
        )
    dep = {k: v for k, v in setup.items() if k in Deployment.model_fields}
    bench = {k: v for k, v in setup.items() if k in BenchConfig.model_fields}
    notes: list[str] = []

    def number(key: str, default: float | None = None) -> float:
        value = data.get(key, default)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise SpecError(f"'{key}' is {value!r}, expected a number", source=str(path), field=key) from None

    completed = int(number("completed")) or 1
    bench.setdefault("num_prompts", int(number("num_prompts", completed) or completed))
    if data.get("max_concurrency") is not None:
        bench.setdefault("max_concurrency", int(number("max_concurrency")))
    rate = data.get("request_rate", "inf")
    bench.setdefault("request_rate", math.inf if rate in ("inf", None) else number("request_rate"))
    bench.setdefault("burstiness", number("burstiness", 1.0))
    if "random_input_len" not in bench:
        bench["random_input_len"] = round(number("total_input_tokens") / completed) + 1
        notes.append(f"random_input_len={bench['random_input_len']}: mean prompt length from the JSON + BOS")
    if "random_output_len" not in bench:
        bench["random_output_len"] = max(1, round(number("total_output_tokens") / completed))
        notes.append(f"random_output_len={bench['random_output_len']}: mean output length from the JSON")
    _check_scenario(dep, bench, str(path))
    unknown = None  # rate inf without a concurrency limit is a known load: every request at t = 0
    out = []
    for metric in JSON_METRICS:
        if metric not in data or data[metric] in (None, 0):
            continue
        if metric == "mean_tpot_ms" and bench["random_output_len"] <= 1:
            continue
        scope = "deployment" if metric_class(metric) == "throughput" else "request"
        out.append(
            Measurement(
                group=str(setup.get("group", path.stem)),
                model=setup["model"],
                hw=setup["hw"],
                precision=setup["precision"],
                deployment=dep,
                bench=bench,
                metric=metric,
                value=number(metric),
                scope=scope,
                source=path.name,
                assumptions=tuple(notes),
                unknown=unknown,
            )
        )
    return out


def default_measurement_files() -> list[Path]:
    """The measurement tables bundled with perfsim (``measurements/*.csv``)."""
    return sorted(data_dir("measurements").glob("*.csv"))


def load_measurements(
    paths: list[str | Path] | None = None,
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
                    _apply_overrides(dep, bench, assume, notes)
                    _check_scenario(dep, bench, str(path))
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
