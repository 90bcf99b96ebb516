"""Run settings a source does not state, fitted as named unknowns: read from sidecars, picked on the rows they
apply to, never seen by the fold that holds those rows out, reported in the profile."""

import dataclasses

import numpy as np
import pytest

from perfsim.calibration.crossval import cross_validate
from perfsim.calibration.csv_table import load_csv
from perfsim.calibration.measurement import Measurement
from perfsim.calibration.profiles import read_profile, settings_from_profile
from perfsim.calibration.run_settings import choose_settings, settings_report, with_settings
from perfsim.calibration.setting_unknown import SettingUnknown
from perfsim.calibration.settings_fit import fit_with_settings
from perfsim.errors import SpecError

HEAD = "group,model,precision,hardware,gpus,parallel,isl,osl,num_prompts,concurrency,metric,value,scope\n"
ROWS = (
    "mixed,deepseek-r1,nvfp4,gb300,2,tp2,2048,64,100,64,mean_tpot_ms,41,request\n"
    "prefill,deepseek-r1,nvfp4,gb300,2,tp2,2048,1,100,64,mean_ttft_ms,3385,request\n"
)
RULE = """assumptions:
  - match: {{osl: "64"}}
    deployment: {{max_num_batched_tokens: {default}}}
    fit: {{name: budget, key: max_num_batched_tokens, candidates: {candidates}}}
    why: "not stated"
  - match: {{model: deepseek-r1}}
    deployment: {{max_num_batched_tokens: 32768}}
    why: "stated for prefill"
"""


def _table(tmp_path, default=32768, candidates="[32768, 65536]"):
    path = tmp_path / "t.csv"
    path.write_text(HEAD + ROWS)
    path.with_suffix(".yaml").write_text(RULE.format(default=default, candidates=candidates))
    return path


def test_a_fit_rule_sets_the_stated_default_and_names_the_unknown(tmp_path):
    mixed, prefill = load_csv(_table(tmp_path))
    assert mixed.deployment["max_num_batched_tokens"] == 32768
    assert mixed.fitted_setting == SettingUnknown(
        name="budget",
        key="max_num_batched_tokens",
        default=32768,
        candidates=(32768, 65536),
        why="not stated",
    )
    assert "unless a profile fitted 'budget' (one of 32768, 65536)" in mixed.assumptions[0]
    assert prefill.fitted_setting is None and prefill.deployment["max_num_batched_tokens"] == 32768


def test_a_setting_the_user_states_is_no_longer_an_unknown(tmp_path):
    mixed, _ = load_csv(_table(tmp_path), assume={"max_num_batched_tokens": 8192})
    assert mixed.fitted_setting is None and mixed.deployment["max_num_batched_tokens"] == 8192


@pytest.mark.parametrize(
    ("default", "candidates", "field"),
    [
        (16384, "[32768, 65536]", "assumptions[0].fit.key"),  # the default is not a candidate
        (32768, "[32768]", "assumptions[0].fit.candidates"),  # nothing to choose
        (32768, "[32768, big]", "assumptions[0].fit.candidates"),
    ],
)
def test_a_bad_fit_rule_names_its_field(tmp_path, default, candidates, field):
    with pytest.raises(SpecError) as exc:
        load_csv(_table(tmp_path, default, candidates))
    assert exc.value.field == field and "t.yaml" in str(exc.value)


UNKNOWN = SettingUnknown(
    name="budget", key="max_num_batched_tokens", default=32768, candidates=(32768, 65536, 98304)
)
TRUTH_BUDGET = 65536


def _row(group: str, value: float, setting: SettingUnknown | None = None) -> Measurement:
    return Measurement(
        group=group,
        model="deepseek-r1",
        hw="gb300",
        precision="fp4",
        deployment={"tensor_parallel_size": 2, "max_num_batched_tokens": 32768},
        bench={"max_concurrency": 64},
        metric="mean_tpot_ms",
        value=value,
        scope="request",
        source=f"synthetic:{group}",
        fitted_setting=setting,
    )


class _Budgeted:
    """Evaluator stand-in: every row scales with the BF16 GEMM efficiency (truth 0.4, default 0.8); rows of an
    unknown budget also with (budget / 65536)^-0.3, so their measured values say the budget was 65536. Three groups state their settings, so every fold keeps two to fit the
    physics on before it picks the budget."""

    def __init__(self):
        self.rows = [_row("a", 20.0, UNKNOWN), _row("a", 20.0, UNKNOWN), *(_row(g, 20.0) for g in "bcd")]

    def predict(self, values, mask=None, settings=None) -> np.ndarray:
        x = values.get("gemm_eff_bf16@blackwell", 0.8) / 0.4
        out = []
        for r in self.rows:
            budget = with_settings(r, settings).deployment["max_num_batched_tokens"]
            out.append(20.0 / x * ((budget / TRUTH_BUDGET) ** -0.3 if r.fitted_setting else 1.0))
        return np.array(out)


def test_with_settings_replaces_only_the_named_unknown():
    row = _row("a", 1.0, UNKNOWN)
    assert with_settings(row, {"budget": 98304}).deployment["max_num_batched_tokens"] == 98304
    assert with_settings(row, {"other": 98304}) is row
    assert with_settings(_row("b", 1.0), {"budget": 98304}).deployment["max_num_batched_tokens"] == 32768


def test_the_pick_is_the_candidate_that_reproduces_its_rows():
    ev = _Budgeted()
    assert choose_settings(ev, {"gemm_eff_bf16@blackwell": 0.4}) == {"budget": TRUTH_BUDGET}
    # a row set without the unknown's rows picks nothing
    assert choose_settings(ev, {}, mask=np.array([False, False, True, True, True])) == {}


def test_physics_and_settings_are_fitted_together():
    result, settings = fit_with_settings(_Budgeted(), names=("gemm_eff_bf16@blackwell",), max_nfev=60)
    assert settings == {"budget": TRUTH_BUDGET}
    assert result.values["gemm_eff_bf16@blackwell"] == pytest.approx(0.4, rel=0.02)
    assert np.allclose(result.predictions, 20.0, rtol=0.02)


def test_the_fold_holding_out_the_unknowns_rows_predicts_them_at_the_stated_default():
    ev = _Budgeted()
    cv = cross_validate(ev, ("gemm_eff_bf16@blackwell",))
    assert cv.fold_settings["a"] == {}  # its training rows (b, c, d) have no budget to learn from
    assert cv.fold_settings["b"] == cv.fold_settings["d"] == {"budget": TRUTH_BUDGET}
    # held out, group a runs at 32768: (32768 / 65536)^-0.3 = 1.23 x the value
    assert cv.predictions[:2] == pytest.approx([20.0 * 2**0.3] * 2, rel=0.02)
    assert cv.predictions[2:] == pytest.approx([20.0] * 3, rel=0.02)


def test_the_profile_reports_each_unknown_with_its_default_and_rows():
    rows = _Budgeted().rows
    report = settings_report(rows, {"budget": 98304})
    assert report["budget"] | {"why": ""} == {
        "key": "max_num_batched_tokens",
        "value": 98304,
        "default": 32768,
        "candidates": [32768, 65536, 98304],
        "fitted": True,
        "rows": 2,
        "groups": ["a"],
        "why": "",
    }
    assert settings_report(rows, {})["budget"]["value"] == 32768


def test_the_default_profile_fits_the_r1_short_output_budget_among_its_candidates():
    profile = read_profile("vllm-0.14.1")
    entry = profile["run_settings"]["r1-short-output-budget"]
    assert entry["value"] in entry["candidates"] and entry["groups"] == ["r1-mixed64-tp2"]
    assert settings_from_profile(profile) == {"r1-short-output-budget": entry["value"]}
    # the profile of 0.13.0 inherits it from its base (its own rows have none)
    assert settings_from_profile(read_profile("vllm-0.13.0")) == {"r1-short-output-budget": entry["value"]}
    # the group's own fold never saw it
    assert "settings" not in profile["fold_params"]["r1-mixed64-tp2"]


def test_rows_of_one_scenario_but_another_unknown_do_not_share_a_simulation():
    row = _row("a", 1.0, UNKNOWN)
    other = dataclasses.replace(row, fitted_setting=dataclasses.replace(UNKNOWN, name="x"))
    assert row.scenario_key() != other.scenario_key()


def test_validate_runs_the_unknowns_rows_with_the_profiles_pick_and_says_so(tmp_path):
    import yaml

    import perfsim

    profile = dict(read_profile("vllm-0.14.1"))
    profile["run_settings"] = {"budget": {"key": "max_num_batched_tokens", "value": 65536}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(profile))
    table = _table(tmp_path)
    report = perfsim.validate([str(table)], calibration=str(path))
    stated = perfsim.validate([str(table)], calibration=str(path), assume={"max_num_batched_tokens": 65536})
    at_default = perfsim.validate([str(table)], calibration="vllm-0.14.1")
    assert report.settings == {"budget": 65536} and stated.settings == {}
    assert report.predictions[0] == pytest.approx(stated.predictions[0], rel=1e-9)
    assert report.predictions[0] != pytest.approx(at_default.predictions[0], rel=1e-3)
    assert report.predictions[1] == pytest.approx(
        at_default.predictions[1], rel=1e-9
    )  # a row with no unknown
    assert (
        "run setting budget (fitted by the profile, stated default 32768): max_num_batched_tokens=65536 for 1 row"
        in report.format()
    )
