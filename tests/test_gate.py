"""The accuracy regression gate: held-out errors of the committed profile, per group and p90, no lost rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from perfsim.calibration.evaluator import Evaluator
from perfsim.calibration.gate import gate_baseline, gate_check, row_id
from perfsim.calibration.measurement import Measurement
from perfsim.calibration.measurements import default_measurement_files, load_measurements
from perfsim.calibration.profiles import known_profiles, read_profile, values_from_profile


def _rows() -> list[Measurement]:
    return [
        Measurement(
            group=g,
            model="deepseek-r1",
            hw="gb300",
            precision="fp4",
            deployment={},
            bench={},
            metric=m,
            value=v,
            scope="request",
            source=f"t.csv:{i + 2}",
        )
        for i, (g, m, v) in enumerate(
            [("a", "mean_ttft_ms", 100.0), ("a", "mean_tpot_ms", 10.0), ("b", "mean_ttft_ms", 50.0)]
        )
    ]


@pytest.fixture()
def data(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("group,metric,value\n")
    return path


def test_gate_passes_on_the_baseline_and_fails_on_a_regression(data):
    rows, pred = _rows(), np.array([110.0, 10.5, 49.0])
    baseline = gate_baseline(rows, pred, [data], commit="abc")
    assert baseline["commit"] == "abc" and baseline["rows"] == [row_id(r) for r in rows]
    assert baseline["by_group"]["a"]["ttft"]["median_abs_pct"] == pytest.approx(10.0)
    assert gate_check(baseline, rows, pred, [data]) == []
    worse = np.array([110.0, 10.5, 40.0])  # group b: 2 % -> 20 %
    failures = gate_check(baseline, rows, worse, [data])
    assert any(f.startswith("group b ttft: median_abs_pct 20.0%") for f in failures)
    assert any(f.startswith("ttft: p90_abs_pct") for f in failures)  # the class p90 too


def test_gate_fails_when_a_row_stops_being_predicted(data):
    rows, pred = _rows(), np.array([110.0, 10.5, 49.0])
    baseline = gate_baseline(rows, pred, [data])
    renamed = [dataclasses.replace(r, group="b2") if r.group == "b" else r for r in rows]
    failures = gate_check(baseline, renamed, pred, [data])
    assert "row no longer predicted: t.csv:4 b mean_ttft_ms" in failures
    assert "group b ttft: no longer predicted" in failures
    lost = gate_check(baseline, rows, np.array([110.0, np.nan, 49.0]), [data])
    assert "row no longer predicted: t.csv:3 a mean_tpot_ms" in lost


def test_gate_fails_when_the_data_changed(data):
    rows, pred = _rows(), np.array([110.0, 10.5, 49.0])
    baseline = gate_baseline(rows, pred, [data])
    data.write_text("group,metric,value\na,mean_ttft_ms,1\n")
    assert gate_check(baseline, rows, pred, [data]) == [
        "data t.csv changed since the baseline (or is missing): refit the profile"
    ]


def _held_out_predictions(profile: dict, rows: list[Measurement]) -> np.ndarray:
    """Each fold's rows predicted with that fold's values (on top of the profile's base, if any)."""
    by = profile["gate"].get("by", "group")
    folds = profile["fold_params" if by == "group" else "gpu_out_folds"]
    base = values_from_profile(read_profile(profile["base"])) if profile.get("base") else {}
    predictions = np.full(len(rows), np.nan)
    ev = Evaluator(rows, workers=2)
    try:
        for fold, entry in folds.items():
            mask = np.array([str(getattr(r, by)) == fold and r.unknown is None for r in rows])
            settings = entry.get("settings") or {}
            predictions[mask] = ev.predict({**base, **entry["values"]}, mask=mask, settings=settings)[mask]
    finally:
        ev.close()
    return predictions


@pytest.mark.parametrize("name", known_profiles())
def test_accuracy_gate(name):
    """Every fold of the committed measurements, predicted from the values fitted without it (stored in the
    profile by `perfsim calibrate`), within 2 points of the profile's baseline, per group and metric class, in
    median and p90, with no row lost and the data unchanged. Refit after a deliberate change of the physics:
    `perfsim calibrate --out calibrations/<profile>.yaml` (see calibrations/README.md for each profile's command)."""
    profile = read_profile(name)
    assert profile is not None and profile.get("gate"), f"calibrations/{name}.yaml needs its gate baseline"
    version = profile["engine"].removeprefix("vllm ")
    rows = [r for r in load_measurements() if r.engine_version == version]
    predictions = _held_out_predictions(profile, rows)
    assert gate_check(profile["gate"], rows, predictions, default_measurement_files()) == []
