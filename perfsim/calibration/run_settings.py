"""Run settings a measurement source does not state, fitted as named unknowns beside the physics.

A source that leaves a server flag open (the vLLM GB300 post gives ``--max-num-batched-tokens`` only "for
prefill throughput") gets a sidecar rule naming the flag, its stated default and the values it may take. A
calibration then picks, for each such unknown, the candidate that best reproduces the rows it applies to (the
physics held at its fit), refits the physics with it, and repeats until the pick holds
(``perfsim.calibration.settings_fit``). The profile reports the pick; a validation fold whose training rows have none of an unknown's rows predicts them at the stated
default, so a held-out group never benefits from its own setting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from perfsim.calibration.measurement import Measurement


def with_settings(row: Measurement, settings: Mapping[str, int] | None) -> Measurement:
    """The row with its unknown setting at the fitted value (unchanged without one, or when none was fitted)."""
    unknown = row.fitted_setting
    if unknown is None or not settings or unknown.name not in settings:
        return row
    return dataclasses.replace(row, deployment={**row.deployment, unknown.key: int(settings[unknown.name])})


def unknowns_of(rows: Sequence[Measurement], mask: np.ndarray | None = None) -> dict[str, list[int]]:
    """Row indices of each named unknown among the known rows (within ``mask``)."""
    out: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if r.fitted_setting is not None and r.unknown is None and (mask is None or mask[i]):
            out.setdefault(r.fitted_setting.name, []).append(i)
    return out


class _Predicts(Protocol):
    rows: list[Measurement]

    def predict(
        self, values: Any, mask: np.ndarray | None = None, settings: Mapping[str, int] | None = None
    ) -> np.ndarray: ...


def choose_settings(
    evaluator: _Predicts,
    values: Mapping[str, float],
    mask: np.ndarray | None = None,
    settings: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """For each unknown with rows in ``mask``, the candidate whose predictions of those rows have the least
    squared log error with the parameters ``values`` (the earlier candidate on a tie)."""
    rows = evaluator.rows
    chosen = dict(settings or {})
    for name, idx in unknowns_of(rows, mask).items():
        unknown = rows[idx[0]].fitted_setting
        assert unknown is not None
        own = np.zeros(len(rows), dtype=bool)
        own[idx] = True
        measured = np.array([rows[i].value for i in idx])
        costs = []
        for candidate in unknown.candidates:
            predicted = evaluator.predict(values, mask=own, settings={**chosen, name: candidate})[idx]
            costs.append(float(np.sum(np.log(predicted / measured) ** 2)))
        chosen[name] = unknown.candidates[int(np.argmin(costs))]
    return chosen


def settings_report(rows: Sequence[Measurement], settings: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Profile entries of the fitted settings: key, value, stated default, candidates, the rows' groups."""
    out: dict[str, dict[str, Any]] = {}
    for name, idx in unknowns_of(rows).items():
        unknown = rows[idx[0]].fitted_setting
        assert unknown is not None
        out[name] = {
            "key": unknown.key,
            "value": int(settings.get(name, unknown.default)),
            "default": unknown.default,
            "candidates": list(unknown.candidates),
            "fitted": name in settings,
            "rows": len(idx),
            "groups": sorted({rows[i].group for i in idx}),
            "why": unknown.why,
        }
    return out


def settings_from_entries(entries: Any) -> dict[str, int]:
    """The fitted values of a profile's ``run_settings`` (or a fold's ``settings``)."""
    if not isinstance(entries, dict):
        return {}
    out = {}
    for name, entry in entries.items():
        value = entry.get("value") if isinstance(entry, dict) else entry
        if isinstance(value, int) and not isinstance(value, bool):
            out[str(name)] = value
    return out
