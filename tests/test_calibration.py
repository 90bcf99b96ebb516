"""Calibration: fitting that recovers known parameters, priors, keys per GPU generation, tied GEMM precisions,
cross-validation from the priors, and the committed profile (physical ranges, provenance, error bands)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import yaml

from perfsim.calibration.crossval import cross_validate
from perfsim.calibration.evaluator import Evaluator
from perfsim.calibration.fit import (
    default_fit_params,
    error_summary,
    error_summary_by_hw_and_class,
    errors_pct,
    fit,
    identifiable,
)
from perfsim.calibration.measurement import Measurement
from perfsim.calibration.param_space import bounds_of, check_name, params_for, split_name
from perfsim.calibration.profiles import (
    load_params,
    prediction_values,
    profile_values,
    read_profile,
    values_from_profile,
)
from perfsim.calibration.ties import tie_kernel_efficiencies
from perfsim.cli import main
from perfsim.costs.generations import bounds_for, spec_params
from perfsim.costs.moe_balance import ep_load_factor
from perfsim.costs.params import CostParams
from perfsim.errors import SpecError
from perfsim.paths import data_dir
from perfsim.prediction import predict
from perfsim.specs.hardware import load_hardware
from perfsim.specs.model import load_model

BW = "blackwell"
#: the vLLM 0.14.1 measurements (the gpt-oss runs of vLLM 0.13.0 have their own profile and tests)
DEEPSEEK_FILES = [
    str(data_dir("measurements") / "vllm-0.14.1-gb300-deepseek.csv"),
    str(data_dir("measurements") / "vllm-gb200-wide-ep-deepseek.csv"),
]
#: TP2 with the R1 post's token budget: prefill steps of up to 16 prompts, compute-bound
BUDGET = {"tensor_parallel_size": 2, "max_num_batched_tokens": 32768}


def _row(group, bench, metric, value, hw="gb300"):
    scope = "deployment" if metric.endswith("throughput") else "request"
    return Measurement(
        group=group,
        model="deepseek-r1",
        hw=hw,
        precision="fp4",
        deployment=BUDGET,
        bench=bench,
        metric=metric,
        value=value,
        scope=scope,
        source="synthetic",
    )


def _synthetic_rows(truth: CostParams) -> list[Measurement]:
    rows = []
    for conc, osl in ((8, 1), (32, 1), (16, 24), (48, 24)):
        bench = {
            "num_prompts": 60,
            "random_input_len": 2048,
            "random_output_len": osl,
            "max_concurrency": conc,
        }
        res = predict("deepseek-r1", "gb300", "fp4", deployment=BUDGET, bench=bench, params=truth).result
        metrics = ["total_token_throughput", "mean_ttft_ms"] + (["mean_tpot_ms"] if osl > 1 else [])
        rows += [_row(f"g{conc}-{osl}", bench, m, res[m]) for m in metrics]
    return rows


def test_fit_recovers_known_parameters():
    """Synthetic measurements from known parameters: the fit must find them again (the unfitted GEMM precisions
    and the prefill attention kernels follow the fitted one's derating, so the truth derates them alike)."""
    derating = 0.45 / 0.65
    truth = CostParams(
        gemm_eff_nvfp4=0.45,
        gemm_eff_bf16=0.8 * derating,
        gemm_eff_fp8=0.8 * derating,
        attn_prefill_eff=0.55 * derating,
        sparse_prefill_eff=0.58 * derating,
        hbm_eff=0.7,
    )
    rows = _synthetic_rows(truth)
    ev = Evaluator(rows, workers=1)
    result = fit(ev, names=("gemm_eff_nvfp4@blackwell", "hbm_eff@blackwell"), max_nfev=40, prior_weight=0.0)
    assert result.values["gemm_eff_nvfp4@blackwell"] == pytest.approx(0.45, rel=0.03)
    assert result.values["hbm_eff@blackwell"] == pytest.approx(0.7, rel=0.03)
    assert np.nanmax(np.abs(errors_pct(rows, result.predictions))) < 2.0


def test_kernel_parameters_apply_to_their_generation_only():
    values = {"hbm_eff@hopper": 0.7, "hbm_eff@blackwell": 0.9, "kernel_gap_s": 3e-6, "gemm_eff_fp8": 0.5}
    hopper, blackwell = params_for(values, "hopper"), params_for(values, BW)
    assert (hopper.hbm_eff, blackwell.hbm_eff) == (0.7, 0.9)
    assert hopper.kernel_gap_s == blackwell.kernel_gap_s == 3e-6  # engine parameters carry over
    assert blackwell.gemm_eff_fp8 == 0.5 and hopper.gemm_eff_fp8 == 0.80  # unsuffixed = legacy Blackwell
    # Hopper's spec-only sparse decode rate is FlashMLA's H800 figure, not Blackwell's
    assert params_for({}, "hopper").sparse_decode_eff == pytest.approx(0.9 * 410 / 989)
    with pytest.raises(SpecError, match="only kernel parameters are kept per GPU generation"):
        check_name("kernel_gap_s@hopper")
    with pytest.raises(SpecError, match="unknown cost parameter 'warp'"):
        check_name("warp@hopper")


def test_unfitted_gemm_precision_follows_the_fitted_derating():
    fitted = {
        "gemm_eff_nvfp4@blackwell": 0.65 * 0.64,
        "gemm_eff_bf16@blackwell": 0.80 * 0.81,
        "hbm_eff@hopper": 0.8,
    }
    tied, why = tie_kernel_efficiencies(fitted)
    assert tied["gemm_eff_fp8@blackwell"] == pytest.approx(0.80 * 0.72)  # geometric mean of 0.64 and 0.81
    assert tied["sparse_prefill_eff@blackwell"] == pytest.approx(0.58 * 0.72)
    assert set(why) == {
        "gemm_eff_fp8@blackwell",
        "attn_prefill_eff@blackwell",
        "sparse_prefill_eff@blackwell",
    }
    assert "geometric mean" in why["gemm_eff_fp8@blackwell"]
    assert "gemm_eff_fp8@hopper" not in tied  # nothing fitted on Hopper GEMMs: nothing derived there
    assert tie_kernel_efficiencies({"hbm_eff@blackwell": 0.8}) == ({"hbm_eff@blackwell": 0.8}, {})


def test_a_fold_that_cannot_fit_sparse_attention_inherits_the_generations_derating():
    """Leave one of the two V3.2 groups out and sparse prefill is exercised by one group: not fitted. It takes
    its FlashMLA default times the geometric mean of the fitted GEMM and dense-attention deratings (here
    cube root of 0.75 x 0.60 x 0.875 = 0.733), not the bare benchmark rate; a base profile's value is kept."""
    fitted = {
        "gemm_eff_nvfp4@blackwell": 0.65 * 0.75,
        "gemm_eff_bf16@blackwell": 0.80 * 0.60,
        "attn_prefill_eff@blackwell": 0.55 * 0.875,
    }
    tied, _ = tie_kernel_efficiencies(fitted)
    ratio = (0.75 * 0.60 * 0.875) ** (1 / 3)
    assert ratio == pytest.approx(0.733, abs=1e-3)
    assert tied["sparse_prefill_eff@blackwell"] == pytest.approx(0.58 * ratio)
    assert tied["gemm_eff_fp8@blackwell"] == pytest.approx(0.80 * ratio)
    kept, why = tie_kernel_efficiencies(fitted, keep={"sparse_prefill_eff@blackwell"})
    assert "sparse_prefill_eff@blackwell" not in kept and "sparse_prefill_eff@blackwell" not in why


class _OneParam:
    """Evaluator stand-in without simulation: one row whose prediction scales as 1 / the named efficiency."""

    def __init__(self, key: str, measured: float):
        self.key, self.rows = key, [_row("a", {}, "mean_tpot_ms", measured)]

    def predict(self, values, mask=None, settings=None) -> np.ndarray:
        base, _ = split_name(self.key)
        return np.array(
            [10.0 * getattr(CostParams(), base) / values.get(self.key, getattr(CostParams(), base))]
        )


def test_hbm_prior_is_narrower_than_kernel_efficiency_priors():
    # one row asking for 0.6x of the default efficiency: a kernel efficiency follows it, HBM streaming (published
    # at 0.82-0.92 of peak, prior +-10 %) moves only part of the way
    want = 10.0 / 0.6
    bf16 = fit(_OneParam("gemm_eff_bf16@blackwell", want), names=("gemm_eff_bf16@blackwell",))
    hbm = fit(_OneParam("hbm_eff@blackwell", want), names=("hbm_eff@blackwell",))
    assert bf16.values["gemm_eff_bf16@blackwell"] / 0.80 < 0.65
    assert 0.7 < hbm.values["hbm_eff@blackwell"] / 0.85 < 0.8


def test_default_fit_params_need_two_groups_per_parameter():
    two = [_row("a", {}, "mean_tpot_ms", 1.0), _row("b", {}, "mean_tpot_ms", 1.0)]
    fp4 = default_fit_params(two)
    assert fp4[:2] == ("gemm_eff_nvfp4@blackwell", "gemm_eff_bf16@blackwell") and "hbm_eff@blackwell" in fp4
    assert not any(k.startswith(("gemm_eff_fp8", "sparse_")) for k in fp4)
    # an MoE model's TP rows exercise the popularity spread too: it sets how many experts a decode step reads
    assert "expert_popularity_cv" in fp4
    assert default_fit_params(two[:1]) == ()  # one group alone fits nothing
    # FP8 weights in one group only: FP8's efficiency is derived from the fitted GEMMs, not fitted on it
    fp8 = dataclasses.replace(two[1], precision="fp8")
    assert not any(k.startswith("gemm_eff_fp8") for k in default_fit_params([*two, fp8]))
    hopper = [dataclasses.replace(r, precision="fp8", hw="h200", group=r.group + "-h") for r in two]
    both = default_fit_params([*two, *hopper])
    assert {"gemm_eff_fp8@hopper", "hbm_eff@hopper", "hbm_eff@blackwell"} <= set(both)
    assert "gemm_eff_fp8@blackwell" not in both
    assert both.count("api_server_latency_s") == 1  # an engine parameter is fitted once, for every GPU


def test_error_summary_by_hand():
    rows = [
        _row("a", {}, "total_token_throughput", 100.0),
        _row("a", {}, "total_token_throughput", 200.0),
        _row("b", {}, "mean_ttft_ms", 10.0),
    ]
    summary = error_summary(rows, np.array([110.0, 150.0, 10.5]))
    assert summary["throughput"]["median_abs_pct"] == pytest.approx(17.5)  # |+10%|, |-25%|
    assert summary["ttft"]["median_abs_pct"] == pytest.approx(5.0)
    hopper = dataclasses.replace(rows[1], hw="h200")
    by_gpu = error_summary_by_hw_and_class([rows[0], hopper, rows[2]], np.array([110.0, 150.0, 10.5]))
    assert by_gpu["h200"] == {"throughput": {"n": 1, "median_abs_pct": 25.0, "p90_abs_pct": 25.0}}
    assert by_gpu[rows[0].hw]["throughput"]["median_abs_pct"] == pytest.approx(10.0)


class _Linear:
    """Evaluator stand-in: row i predicts value x gemm_eff / default for group-specific sensitivities."""

    def __init__(self):
        self.rows = [
            _row(g, {}, "mean_tpot_ms", v) for g, v in (("a", 8.0), ("a", 8.2), ("b", 7.9), ("c", 8.1))
        ]

    def predict(self, values, mask=None, settings=None) -> np.ndarray:
        x = values.get("gemm_eff_bf16@blackwell", 0.8) / 0.8
        return np.array([10.0 / x] * len(self.rows))


def test_cross_validation_folds_start_from_the_priors():
    cv = cross_validate(_Linear(), ("gemm_eff_bf16@blackwell",))
    assert set(cv.fold_values) == {"a", "b", "c"}
    for fold, values in cv.fold_values.items():
        assert (
            cv.fold_nfev[fold] > 2 and cv.fold_converged[fold]
        )  # each fold converged from the prior, not a warm start
        assert values["gemm_eff_bf16@blackwell"] != pytest.approx(0.8, rel=0.05)
    assert np.all(np.isfinite(cv.predictions))


def test_a_fold_fits_only_what_its_training_rows_exercise():
    rows = [_row(g, {}, "mean_tpot_ms", 8.0) for g in ("a", "b")] + [
        _row("c", {}, "mean_tpot_ms", 9.0, hw="h200")
    ]
    names = ("hbm_eff@blackwell", "hbm_eff@hopper", "api_server_latency_s", "sparse_prefill_eff@blackwell")
    # one Hopper group only; R1 has no sparse attention
    assert identifiable(names, rows) == ("hbm_eff@blackwell", "api_server_latency_s")


def test_a_fit_on_top_of_a_base_derives_no_gemm_efficiency_the_base_holds():
    fixed = {"gemm_eff_bf16@blackwell": 0.5, "gemm_eff_nvfp4@blackwell": 0.45}
    result = fit(_Linear(), names=("gemm_eff_fp8@blackwell",), fixed=fixed)
    assert not set(fixed) & set(result.derived)
    assert all(result.values.get(k, v) == v for k, v in fixed.items())


def test_cross_validation_runs_only_the_named_folds():
    cv = cross_validate(_Linear(), ("gemm_eff_bf16@blackwell",), only=["b"])
    assert set(cv.fold_values) == {"b"}
    assert [bool(np.isfinite(p)) for p in cv.predictions] == [False, False, True, False]
    with pytest.raises(ValueError, match="no group fold z; the data have a, b, c"):
        cross_validate(_Linear(), ("gemm_eff_bf16@blackwell",), only=["z"])


# ---- the committed profile ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def profile():
    prof = read_profile("default")
    assert prof is not None, "calibrations/vllm-0.14.1.yaml must be committed"
    return prof


def test_profile_records_data_date_domain_and_errors(profile):
    assert profile["engine"] == "vllm 0.14.1" and profile["fitted"]
    assert profile["domain"]["hardware"] == ["gb200", "gb300"] and profile["domain"]["generations"] == [BW]
    for key in ("params", "fit_error", "cv_error", "cv_residuals", "fold_params", "gpu_out_error", "gate"):
        assert profile[key], key
    assert set(profile["spec_only_error_by_hw"]) == {"gb200", "gb300"}


def test_every_fitted_value_is_in_its_physical_range(profile):
    """Each value within its sourced bounds, and the acceptance limits of issue 13 (front end <= 30 ms, HBM
    streaming <= 0.92, EP2 imbalance <= 10 %, sparse efficiencies within FlashMLA's published rates)."""
    values = values_from_profile(profile)
    for key, value in values.items():
        lo, hi = bounds_of(key)
        assert lo <= value <= hi, key
    for generation in {split_name(k)[1] for k in values} - {None} | {BW}:
        p = params_for(values, generation)
        assert p.api_server_latency_s <= 0.030 and p.hbm_eff <= 0.92
        assert p.sparse_prefill_eff <= bounds_for("sparse_prefill_eff", generation)[1]
        assert p.sparse_decode_eff <= bounds_for("sparse_decode_eff", generation)[1]
        moe = load_model("deepseek-r1", "fp4").arch.moe
        for tokens in (64, 1024, 32768):  # a small decode step to a large prefill chunk
            imbalance = ep_load_factor(
                moe.num_experts, moe.top_k, 2, tokens, p.expert_popularity_cv, grouped=True
            )
            assert imbalance - 1.0 <= 0.10, tokens
    assert bounds_for("sparse_decode_eff", BW)[1] == pytest.approx(350 / 2250)  # FlashMLA README, B200


def test_predictions_carry_provenance_and_error_band(profile, tmp_path):
    gb300, h200, b200 = load_hardware("gb300"), load_hardware("h200"), load_hardware("b200")
    blackwell, why = load_params("default", gb300)
    assert "calibrated on this hardware" in why
    assert "transferred from gb200, gb300" in load_params("default", b200)[1]
    # 0.14.1 has no Hopper rows: Hopper's kernel values come from the 0.13.0 profile's H200 runs, its engine
    # values stay 0.14.1's, and Blackwell's fit stays on Blackwell
    hopper, why = load_params("default", h200)
    assert "hopper kernel efficiencies from vllm-0.13.0's h200 runs" in why
    hopper_fit = values_from_profile(read_profile("vllm-0.13.0"))
    assert hopper.gemm_eff_bf16 == hopper_fit["gemm_eff_bf16@hopper"]
    assert hopper.weight_dequant_per_sm_cycle == hopper_fit["weight_dequant_per_sm_cycle@hopper"]
    assert hopper.gemm_eff_nvfp4 == hopper_fit["gemm_eff_nvfp4@hopper"] != blackwell.gemm_eff_nvfp4
    assert hopper.kernel_gap_s == blackwell.kernel_gap_s != hopper_fit["kernel_gap_s"]
    assert load_params("vllm-0.13.0", h200)[0].kernel_gap_s == hopper_fit["kernel_gap_s"]
    # a profile of one's own is used as it is
    own = tmp_path / "mine.yaml"
    own.write_text((data_dir("calibrations") / "vllm-0.14.1.yaml").read_text())
    mine, why = load_params(str(own), h200)
    assert "hopper kernel efficiencies spec-only" in why
    assert mine.gemm_eff_bf16 == spec_params("hopper").gemm_eff_bf16
    # validation predicts runs as predict would; a base lends calibration only its own values
    validating, label = prediction_values("default")
    assert validating["gemm_eff_bf16@hopper"] == hopper_fit["gemm_eff_bf16@hopper"]
    assert "hopper kernels from vllm-0.13.0" in label
    assert "gemm_eff_bf16@hopper" not in profile_values("default")[0]
    assert "gemm_eff_bf16@hopper" not in prediction_values(str(own))[0]
    on_h200 = predict(
        "gpt-oss-120b",
        "h200",
        bench={"num_prompts": 4, "random_input_len": 128, "random_output_len": 4, "max_concurrency": 2},
    )
    assert "from vllm-0.13.0's h200 runs" in on_h200.result["prediction"]["calibration"]
    assert any("from vllm-0.13.0's h200 runs" in note for note in on_h200.notes)  # the band's note agrees
    assert load_params("none", gb300)[1].startswith("spec-only")
    pred = predict(
        bench={"num_prompts": 20, "random_input_len": 2048, "random_output_len": 8, "max_concurrency": 4}
    )
    band = pred.result["prediction"]
    assert (
        band["calibration"].startswith("vllm-0.14.1")
        and band["error_band"]["throughput"]["median_abs_pct"] > 0
    )
    far = predict(hw="b200", bench={"num_prompts": 10, "random_input_len": 9000, "random_output_len": 4})
    notes = " ".join(far.result["prediction"]["notes"])
    assert "b200 was not calibrated" in notes and "input length 9000 is outside" in notes
    assert far.result["prediction"]["extrapolated"]


def test_validate_cli_prints_errors_and_plots(tmp_path, capsys):
    plot = tmp_path / "parity.png"
    assert main(["validate", *DEEPSEEK_FILES, "--plot", str(plot), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "by metric" in out and "throughput" in out and "concurrency not stated" in out
    assert "gb200-decode-dp8ep8" in out and "weight offloading" in out
    assert plot.exists() and plot.stat().st_size > 10_000


def test_validate_json_spec_only(capsys):
    assert main(["validate", *DEEPSEEK_FILES, "--calibration", "none", "--json", "--workers", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["calibration"].startswith("spec-only")
    assert data["by_metric"]["throughput"]["median_abs_pct"] > 0 and data["by_metric"]["kernel"]["n"] == 9


def test_calibrate_cli_writes_a_profile(tmp_path, capsys):
    rows_csv = tmp_path / "mini.csv"
    rows_csv.write_text(
        "group,model,precision,hardware,gpus,parallel,isl,osl,num_prompts,concurrency,metric,value,scope\n"
        "a,deepseek-r1,fp4,gb300,2,tp2,1024,1,40,8,total_token_throughput,15000,per_gpu\n"
        "b,deepseek-r1,fp4,gb300,2,tp2,1024,16,40,8,mean_tpot_ms,30,request\n"
    )
    out = tmp_path / "mini.yaml"
    args = ["calibrate", str(rows_csv), "--out", str(out), "--max-nfev", "8", "--workers", "1"]
    assert main([*args, "--params", "gemm_eff_nvfp4@blackwell,hbm_eff@blackwell"]) == 0
    prof = yaml.safe_load(out.read_text())
    fitted = {k for k, v in prof["params"].items() if "derived" not in v}
    assert fitted == {"gemm_eff_nvfp4@blackwell", "hbm_eff@blackwell"} and prof["cv_error"]
    derived = {k for k, v in prof["params"].items() if "derived" in v}
    assert derived == {
        "gemm_eff_fp8@blackwell",
        "gemm_eff_bf16@blackwell",
        "attn_prefill_eff@blackwell",
        "sparse_prefill_eff@blackwell",
    }
    ratio = (
        prof["params"]["gemm_eff_nvfp4@blackwell"]["value"] / 0.65
    )  # the fitted derating carries over to both
    assert prof["params"]["gemm_eff_fp8@blackwell"]["value"] == pytest.approx(0.80 * ratio, rel=1e-3)
    assert prof["gate"]["rows"] and set(prof["gate"]["data_sha256"]) == {"mini.csv"}
    assert main(["calibrate", str(rows_csv), "--params", "warp_speed"]) == 2
    assert main(["calibrate", str(rows_csv), "--params", "kernel_gap_s@hopper"]) == 2
    assert "only kernel parameters" in capsys.readouterr().err


def test_settings_outside_the_calibrated_domain_are_noted(tmp_path):
    """TP8 on GB300, eager mode, a finite request rate and a range ratio none of the rows used all widen the band."""
    from perfsim.calibration.bands import prediction_band
    from perfsim.calibration.calibrate import domain_of
    from perfsim.calibration.measurements import load_measurements
    from perfsim.serving.workload import BenchConfig
    from perfsim.specs.deployment import Deployment, resolve_deployment
    from perfsim.specs.hardware import load_hardware
    from perfsim.specs.model import load_model

    domain = domain_of([r for r in load_measurements() if r.engine_version == "0.14.1"])
    assert domain["tensor_parallel_sizes"] == [1, 2] and domain["request_rate"] is None
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"name": "p", "params": {}, "domain": domain, "cv_residuals": []}))
    model, hw = load_model("deepseek-v3.2", "fp4"), load_hardware("gb300")
    inside = prediction_band(
        str(profile), model, hw, resolve_deployment(Deployment(), model, hw, 2), BenchConfig()
    )
    assert not any("outside" in n or "eager" in n for n in inside["notes"])
    dep = resolve_deployment(Deployment(enforce_eager=True), model, hw, 8)
    bench = BenchConfig(request_rate=4.0, random_range_ratio=0.5)
    notes = " | ".join(prediction_band(str(profile), model, hw, dep, bench)["notes"])
    for needle in (
        "tensor parallel size 8 is outside the calibrated set (1, 2)",
        "eager mode",
        "request rate 4/s",
        "--random-range-ratio 0.5",
    ):
        assert needle in notes, needle


@pytest.mark.parametrize("path", sorted(data_dir("calibrations").glob("*.yaml")), ids=lambda p: p.name)
def test_every_committed_profile_and_its_folds_stay_inside_the_sourced_bounds(path):
    """Not only the default: every profile's fitted values and every validation fold's, converged."""
    prof = yaml.safe_load(path.read_text())
    for key, value in values_from_profile(prof).items():
        lo, hi = bounds_of(key)
        assert lo <= value <= hi, (path.name, key, value)
    folds = [
        (kind, name, fold) for kind in prof if kind.endswith("_folds") for name, fold in prof[kind].items()
    ]
    assert folds, f"{path.name} records no validation folds"
    for kind, name, fold in folds:
        assert fold["converged"], (kind, name)
        for key, value in fold["values"].items():
            lo, hi = bounds_of(key)
            assert lo <= value <= hi, (path.name, kind, name, key, value)
