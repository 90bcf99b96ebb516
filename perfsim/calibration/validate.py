"""Validation: predict every measurement row and report signed errors, per row, metric and group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from perfsim.calibration.evaluator import Evaluator, ParamValues
from perfsim.calibration.fit import error_summary, errors_pct
from perfsim.calibration.measurements import Measurement
from perfsim.calibration.run_settings import unknowns_of
from perfsim.costs.params import CostParams
from perfsim.report import format_table


@dataclass
class ValidationReport:
    """Predicted vs measured for each row (NaN prediction where the scenario is unknown)."""

    rows: list[Measurement]
    predictions: np.ndarray
    calibration: str
    #: the profile's fitted run settings that rows of these measurements ran with
    settings: dict[str, int] = field(default_factory=dict)

    @property
    def errors_pct(self) -> np.ndarray:
        """Signed relative errors (%)."""
        return errors_pct(self.rows, self.predictions)

    def by_metric(self) -> dict[str, dict]:
        """Median / p90 absolute error per metric class."""
        return error_summary(self.rows, self.predictions)

    def by_group(self) -> dict[str, dict]:
        """Median / p90 absolute error per measurement group."""
        return error_summary(self.rows, self.predictions, by="group")

    def to_dict(self) -> dict:
        """JSON-able report."""
        err = self.errors_pct
        return {
            "calibration": self.calibration,
            "run_settings": dict(self.settings),
            "rows": [
                {
                    "source": r.source,
                    "group": r.group,
                    "label": r.label,
                    "metric": r.metric,
                    "scope": r.scope,
                    "measured": r.value,
                    "predicted": None if np.isnan(p) else float(p),
                    "error_pct": None if np.isnan(e) else float(e),
                    "unknown": r.unknown,
                    "assumptions": list(r.assumptions),
                }
                for r, p, e in zip(self.rows, self.predictions, err, strict=True)
            ],
            "by_metric": self.by_metric(),
            "by_group": self.by_group(),
        }

    def format(self) -> str:
        """Tables: rows, skipped rows, assumptions, summaries."""
        err = self.errors_pct
        lines = [f"calibration: {self.calibration}"]
        rows_of = unknowns_of(self.rows)
        for name, value in self.settings.items():
            unknown, n = self.rows[rows_of[name][0]].fitted_setting, len(rows_of[name])
            assert unknown is not None
            lines.append(
                f"run setting {name} (fitted by the profile, stated default {unknown.default}): "
                f"{unknown.key}={value} for {n} row{'s' if n != 1 else ''}"
            )
        lines.append("")
        rows = [
            (r.source, r.label, r.value, p, f"{e:+.1f}%")
            for r, p, e in zip(self.rows, self.predictions, err, strict=True)
            if r.unknown is None
        ]
        lines.append(format_table(rows, ["source", "row", "measured", "predicted", "error"], align="llrrr"))
        skipped = [r for r in self.rows if r.unknown]
        if skipped:
            lines += ["", "not predicted (settings unknown):"]
            lines += [f"  {r.source} {r.label}: {r.unknown}" for r in skipped]
        assumptions = sorted({a for r in self.rows for a in r.assumptions})
        if assumptions:
            lines += ["", "assumptions:"] + [f"  {a}" for a in assumptions]
        for title, summary in (("by metric", self.by_metric()), ("by group", self.by_group())):
            lines += ["", title + ":"]
            lines.append(
                format_table(
                    [
                        (k, v["n"], f"{v['median_abs_pct']:.1f}%", f"{v['p90_abs_pct']:.1f}%")
                        for k, v in summary.items()
                    ],
                    ["", "rows", "median |error|", "p90 |error|"],
                    align="lrrr",
                )
            )
        return "\n".join(lines)


def validate(
    rows: Sequence[Measurement],
    values: ParamValues | CostParams,
    calibration: str,
    *,
    workers: int | None = None,
    settings: Mapping[str, int] | None = None,
) -> ValidationReport:
    """Predict every known row with a profile's ``values`` (each row with its GPU generation's parameters) and
    its fitted run ``settings`` (rows whose source leaves a setting open)."""
    evaluator = Evaluator(rows, workers=workers)
    try:
        predictions = evaluator.predict(values, settings=settings)
    finally:
        evaluator.close()
    used = unknowns_of(rows)
    applied = {k: v for k, v in (settings or {}).items() if k in used}
    return ValidationReport(
        rows=list(rows), predictions=predictions, calibration=calibration, settings=applied
    )
