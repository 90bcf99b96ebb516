"""Measurement tables (CSV, see measurements/README.md) with their YAML sidecars of unstated settings."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from perfsim.calibration.measurement import (
    CSV_PERCENTILES,
    LATENCY_METRIC,
    METRIC_CLASS,
    PRECISION_ALIASES,
    SCOPES,
    Measurement,
    apply_overrides,
    check_scenario,
    metric_class,
    parse_parallel,
)
from perfsim.calibration.setting_unknown import SettingUnknown, parse_setting_unknown
from perfsim.errors import SpecError
from perfsim.paths import data_dir
from perfsim.specs.deployment import VLLM_VERSION
from perfsim.specs.loading import load_yaml_file, read_text


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
        if "fit" in rule:
            _setting_of(rule, source, f"assumptions[{i}].fit")  # refused here, before any row is read


def _setting_of(rule: dict[str, Any], source: str = "", field: str = "fit") -> SettingUnknown:
    """The named unknown of a rule with ``fit:`` (its ``deployment`` states the default)."""
    spec = rule["fit"]
    key = spec.get("key") if isinstance(spec, dict) else None
    default = (rule.get("deployment") or {}).get(key) if isinstance(key, str) else None
    return parse_setting_unknown(spec, default, str(rule.get("why", "")), source, field)


#: a sidecar value that stands for the row's own concurrency (a server flag set per run, e.g. --max-num-seqs CONC)
CONCURRENCY_PLACEHOLDER = "{concurrency}"


def _apply_assumptions(
    row: dict[str, str], dep: dict, bench: dict, spec: dict
) -> tuple[list[str], SettingUnknown | None]:
    """Fill what the row does not state from the first matching rules; also the named unknown setting of a
    rule with ``fit`` when that rule set it."""
    notes: list[str] = []
    setting = None
    for rule in spec.get("assumptions", []) or []:
        match = rule.get("match", {})
        if all(str(row.get(k, "")) == str(v) for k, v in match.items()):
            unknown = _setting_of(rule) if "fit" in rule else None
            for key, value in (rule.get("deployment") or {}).items():
                if value == CONCURRENCY_PLACEHOLDER:
                    value = int(row["concurrency"])
                if key not in dep:
                    dep[key] = value
                    if unknown is not None and unknown.key == key:
                        setting = unknown
                        notes.append(
                            f"{key}={value} unless a profile fitted '{unknown.name}' (one of "
                            f"{', '.join(map(str, unknown.candidates))}): {rule.get('why', 'assumed')}"
                        )
                    else:
                        notes.append(f"{key}={value}: {rule.get('why', 'assumed')}")
            for key, value in (rule.get("bench") or {}).items():
                if key not in bench:
                    bench[key] = value
                    notes.append(f"{key}={value}: {rule.get('why', 'assumed')}")
    return notes, setting


def sidecar_of(path: Path) -> tuple[Path, str | None]:
    """The CSV's YAML sidecar: the one beside it, else the bundled one of the same name (a copy of a bundled
    table moved elsewhere keeps the settings its source does not state), with a note saying so."""
    beside = path.with_suffix(".yaml")
    bundled = data_dir("measurements") / beside.name
    if not beside.exists() and bundled.exists():
        return bundled, f"settings the data do not state taken from perfsim's bundled {bundled.name}"
    return beside, None


def load_csv(path: Path, assume: dict[str, Any] | None = None) -> list[Measurement]:
    """Rows of a measurement CSV (see measurements/README.md), with its YAML sidecar's assumptions."""
    sidecar, sidecar_note = sidecar_of(path)
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
            length_note = _apply_length_range(bench, spec.get("length_range"), str(sidecar))
            if row.get("num_prompts"):
                bench["num_prompts"] = int(row["num_prompts"])
            own = LATENCY_METRIC.fullmatch(metric)
            own_pct = [own[2]] if own and own[2] and own[2] not in CSV_PERCENTILES else []
            bench["percentile_metrics"] = "ttft,tpot,itl,e2el"
            bench["metric_percentiles"] = ",".join([*CSV_PERCENTILES, *own_pct])
            notes, setting = _apply_assumptions(row, dep, bench, spec)
            notes += length_note
            if sidecar_note and notes:
                notes.append(sidecar_note)
            if row.get("concurrency", "").strip():
                bench["max_concurrency"] = int(row["concurrency"])
            apply_overrides(dep, bench, assume or {}, notes)
            if setting is not None and setting.key in (assume or {}):
                setting = None  # the user stated it
            check_scenario(dep, bench, where)
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
                engine_version=str(spec.get("vllm_version") or VLLM_VERSION),
                fitted_setting=setting,
            )
        )
    return out


def _apply_length_range(bench: dict[str, Any], length_range: Any, source: str) -> list[str]:
    """A client that drew lengths uniformly from [lo x L, hi x L] is vLLM's random dataset with length
    (lo + hi) / 2 x L and range ratio (hi - lo) / (hi + lo)."""
    if length_range is None:
        return []
    try:
        lo, hi = (float(x) for x in length_range)
        assert 0 < lo <= hi
    except (TypeError, ValueError, AssertionError):
        raise SpecError(
            "expected [low, high] fractions of the nominal length", source=source, field="length_range"
        ) from None
    for key in ("random_input_len", "random_output_len"):
        bench[key] = max(1, round(bench[key] * (lo + hi) / 2))
    bench["random_range_ratio"] = round((hi - lo) / (hi + lo), 6)
    return [
        f"lengths uniform in [{lo:g} L, {hi:g} L] of the nominal L: vLLM's random dataset with "
        f"{(lo + hi) / 2:g} L and --random-range-ratio {bench['random_range_ratio']:g}"
    ]
