"""Published tables kept in their source's full column set (``source_ref``, ``engine_version``, ..., ``notes``).

Such a table describes each row in words (parallelism, workload, ambiguity), so perfsim reads it only through its
YAML sidecar: a list of rules, first match wins, that say for each kind of row what perfsim predicts (a served
workload, the steady state of a decode instance, one kernel) with which settings, or why the row cannot be
predicted. The interpretation is then written down once, beside the data, and printed with every row.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any

from perfsim.calibration.csv_table import sidecar_of
from perfsim.calibration.measurement import KINDS, SCOPES, Measurement, check_scenario, metric_class
from perfsim.errors import SpecError
from perfsim.specs.loading import load_yaml_file, read_text

#: the columns that mark a table as a source table
SOURCE_TABLE_COLUMNS = ("source_ref", "engine_version", "parallelism", "workload", "metric", "value")
#: what a rule may set
RULE_KEYS = {
    "where",
    "group",
    "kind",
    "metric",
    "scope",
    "deployment",
    "bench",
    "kernel_op",
    "assumptions",
    "unknown",
}
#: a kernel row's batch as the workload column states it
TOTAL_TOKENS = re.compile(r"total tokens\s*=\s*(\d+)")


def is_source_table(header: list[str]) -> bool:
    """Whether a CSV header is a source table's."""
    return all(c in header for c in SOURCE_TABLE_COLUMNS)


def _matches(row: dict[str, str], where: dict[str, Any]) -> bool:
    for column, want in where.items():
        cell = row.get(column, "")
        if isinstance(want, dict):
            if "contains" in want and str(want["contains"]) not in cell:
                return False
        elif cell != str(want):
            return False
    return True


def _check_sidecar(spec: dict[str, Any], source: str) -> list[dict[str, Any]]:
    for key in ("model", "precision", "hw"):
        if not isinstance(spec.get(key), str):
            raise SpecError("expected the perfsim name every row maps to", source=source, field=key)
    if not isinstance(spec.get("module_dtypes") or {}, dict):
        raise SpecError(
            "expected a mapping of module class to weight dtype", source=source, field="module_dtypes"
        )
    rules = spec.get("rows")
    if not isinstance(rules, list) or not rules:
        raise SpecError("expected a list of row rules ({where, ...})", source=source, field="rows")
    for i, rule in enumerate(rules):
        where = f"rows[{i}]"
        if not isinstance(rule, dict) or not isinstance(rule.get("where"), dict):
            raise SpecError(
                "expected a mapping with a 'where' mapping of column values", source=source, field=where
            )
        extra = set(rule) - RULE_KEYS
        if extra:
            raise SpecError(
                f"unknown keys {', '.join(sorted(extra))}; allowed: {', '.join(sorted(RULE_KEYS))}",
                source=source,
                field=where,
            )
        if "unknown" not in rule:
            for key in ("group", "kind", "metric", "scope"):
                if key not in rule:
                    raise SpecError(f"a predicted row needs '{key}'", source=source, field=where)
            if rule["kind"] not in KINDS:
                raise SpecError(
                    f"kind '{rule['kind']}'; allowed: {', '.join(KINDS)}", source=source, field=where
                )
            if rule["scope"] not in SCOPES:
                raise SpecError(
                    f"scope '{rule['scope']}'; allowed: {', '.join(SCOPES)}", source=source, field=where
                )
            if metric_class(str(rule["metric"])) is None:
                raise SpecError(f"metric '{rule['metric']}' unknown", source=source, field=where)
    return rules


def _bench(rule: dict[str, Any], row: dict[str, str], where: str) -> dict[str, Any]:
    bench: dict[str, Any] = {}
    if row.get("isl"):
        bench["random_input_len"] = int(row["isl"])
    if row.get("osl"):
        bench["random_output_len"] = int(row["osl"])
    if rule["kind"] == "kernel":
        m = TOTAL_TOKENS.search(row.get("workload", ""))
        if not m or "random_input_len" not in bench:
            raise SpecError(
                "a kernel row needs isl (sequence length) and 'total tokens=N' in workload", source=where
            )
        bench["max_concurrency"] = int(m[1]) // bench["random_input_len"]
    bench.update(rule.get("bench") or {})
    return bench


def load_source_table(path: Path) -> list[Measurement]:
    """The rows of a source table, interpreted by the rules of its sidecar (``<name>.yaml`` beside it or bundled)."""
    sidecar, _note = sidecar_of(path)
    if not sidecar.exists():
        raise SpecError(
            "a source table (source_ref, engine_version, ... columns) needs a YAML sidecar of row rules "
            f"({sidecar.name}); see measurements/README.md",
            source=str(path),
        )
    spec = dict(load_yaml_file(sidecar))
    rules = _check_sidecar(spec, str(sidecar))
    module_dtypes = tuple(sorted((str(k), str(v)) for k, v in (spec.get("module_dtypes") or {}).items()))
    common = [str(a) for a in spec.get("assumptions") or []]
    out: list[Measurement] = []
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    for line, row in enumerate(reader, start=2):
        where = f"{path.name}:{line}"
        rule = next((r for r in rules if _matches(row, r["where"])), None)
        if rule is None:
            raise SpecError(
                f"no rule of {sidecar.name} matches this row (metric {row.get('metric')!r})", source=where
            )
        try:
            value = float(row["value"])
        except ValueError:
            raise SpecError(f"bad number {row['value']!r}", source=where, field="value") from None
        if not math.isfinite(value) or value <= 0:
            raise SpecError(
                f"value must be a positive number, got {row['value']}", source=where, field="value"
            )
        unknown = rule.get("unknown")
        kind = rule.get("kind", "serving")
        dep = dict(rule.get("deployment") or {})
        bench = None if unknown else _bench(rule, row, where)
        if bench is not None and kind != "kernel":
            check_scenario(dep, bench, where)
        out.append(
            Measurement(
                group=str(rule.get("group", row.get("metric", ""))),
                model=spec["model"],
                hw=spec["hw"],
                precision=spec["precision"],
                deployment=dep,
                bench=bench,
                metric=str(rule.get("metric", row["metric"])),
                value=value,
                scope=str(rule.get("scope", "kernel")),
                source=where,
                note=row.get("ambiguity", ""),
                assumptions=tuple(common + [str(a) for a in rule.get("assumptions") or []]),
                unknown=str(unknown) if unknown else None,
                kind=kind,
                module_dtypes=module_dtypes,
                kernel_op=str(rule.get("kernel_op", "")),
            )
        )
    return out
