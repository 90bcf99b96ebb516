"""Calibration and validation: measurement loading, fitting that recovers known parameters, profiles,
error bands and the accuracy gate on the committed measurements."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import yaml

from perfsim.calibration.fit import Evaluator, default_fit_params, error_summary, errors_pct, fit
from perfsim.calibration.measurements import load_bench_json, load_measurements, parse_parallel
from perfsim.calibration.profiles import load_params, read_profile
from perfsim.cli import main
from perfsim.costs.params import CostParams, tie_gemm_efficiencies
from perfsim.errors import SpecError
from perfsim.prediction import predict
from perfsim.specs.hardware import load_hardware


def test_bundled_measurements_load_with_provenance():
    rows = load_measurements()
    assert len(rows) == 58
    unknown = [r for r in rows if r.unknown]
    assert len(unknown) == 1 and unknown[0].value == 2816 and "concurrency" in unknown[0].unknown
    ep = next(r for r in rows if r.group == "r1-prefill-ep2")
    assert ep.deployment["data_parallel_size"] == 2 and ep.deployment["enable_expert_parallel"]
    assert ep.deployment["tensor_parallel_size"] == 1 and ep.model == "deepseek-r1" and ep.precision == "fp4"
    assert ep.deployment["max_num_batched_tokens"] == 32768
    assert any("recommended" in a for a in ep.assumptions)
    assert all(r.source.startswith("vllm-0.14.1-gb300-deepseek.csv:") for r in rows)


def test_assume_fills_an_unknown_setting():
    rows = load_measurements(assume={"concurrency": 512})
    headline = next(r for r in rows if r.value == 2816)
    assert headline.unknown is None and headline.bench["max_concurrency"] == 512
    assert any("command line" in a for a in headline.assumptions)


def test_a_moved_copy_of_the_bundled_table_keeps_its_settings(tmp_path):
    from perfsim.calibration.measurements import default_measurement_files

    bundled = default_measurement_files()[0]
    copy = tmp_path / bundled.name
    copy.write_text(bundled.read_text())
    rows = load_measurements([copy])
    r1 = next(r for r in rows if r.group == "r1-prefill-tp2")
    assert (
        r1.deployment["max_num_batched_tokens"] == 32768
        and r1.precision == "fp4"
        and r1.model == "deepseek-r1"
    )
    assert any("bundled vllm-0.14.1-gb300-deepseek.yaml" in a for a in r1.assumptions)


def test_a_table_without_sidecar_reads_common_precision_names(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text(
        "group,model,precision,hardware,gpus,parallel,isl,osl,num_prompts,concurrency,metric,value,scope\n"
        "a,deepseek-r1-0528,nvfp4,gb300,2,tp2,2048,1,100,16,total_token_throughput,16000,per_gpu\n"
        "b,deepseek-v3.2,BF16,gb300,8,tp8,2048,1,100,16,total_token_throughput,3000,per_gpu\n"
    )
    rows = load_measurements([path])
    assert [r.precision for r in rows] == ["fp4", "bf16"]
    assert "max_num_batched_tokens" not in rows[0].deployment and not rows[0].assumptions  # vLLM's defaults


def test_latency_percentiles_as_bench_serve_saves_them(tmp_path):
    path = tmp_path / "pct.csv"
    head = "group,model,precision,hardware,gpus,parallel,isl,osl,num_prompts,concurrency,metric,value,scope\n"
    row = "a,deepseek-r1,fp4,gb300,2,tp2,512,32,40,8,{},100,request\n"
    path.write_text(head + "".join(row.format(m) for m in ("p90_ttft_ms", "median_e2el_ms", "p99.9_tpot_ms")))
    rows = load_measurements([path])
    assert [r.metric_class for r in rows] == ["ttft", "e2el", "tpot"]
    assert len({r.scenario_key() for r in rows[:2]}) == 1  # standard percentiles share one simulation
    result = predict("deepseek-r1", "gb300", "fp4", rows[2].deployment, rows[2].bench).result
    assert all(r.predicted(result) > 0 for r in rows)
    path.write_text(head + row.format("p90_goodput"))
    with pytest.raises(SpecError, match="p90_goodput' unknown.*pNN of ttft"):
        load_measurements([path])


def test_parse_parallel():
    assert parse_parallel("tp4+mtp1") == {"tensor_parallel_size": 4, "num_speculative_tokens": 1}
    assert parse_parallel("1p3d-tp2") == {
        "num_prefill_instances": 1,
        "num_decode_instances": 3,
        "tensor_parallel_size": 2,
    }
    with pytest.raises(SpecError, match="unknown part"):
        parse_parallel("tp2+warp9")


BENCH_JSON = {
    "date": "20260722-041843",
    "backend": "openai",
    "model_id": "x",
    "num_prompts": 200,
    "request_rate": 1.0,
    "burstiness": 1.0,
    "max_concurrency": None,
    "duration": 203.5,
    "completed": 200,
    "failed": 0,
    "total_input_tokens": 40000,
    "total_output_tokens": 25600,
    "request_throughput": 0.98,
    "output_throughput": 125.8,
    "total_token_throughput": 322.3,
    "max_output_tokens_per_s": 313.0,
    "mean_ttft_ms": 95.6,
    "mean_tpot_ms": 27.9,
}


def test_bench_json_rows_infer_lengths(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(BENCH_JSON))
    rows = load_bench_json(
        path, {"model": "deepseek-r1", "hw": "h200", "precision": "fp8", "tensor_parallel_size": 8}
    )
    assert {r.metric for r in rows} == {
        "total_token_throughput",
        "output_throughput",
        "max_output_tokens_per_s",
        "mean_ttft_ms",
        "mean_tpot_ms",
    }
    r = rows[0]
    assert r.bench["random_input_len"] == 201 and r.bench["random_output_len"] == 128  # 40000/200 + BOS
    assert r.bench["request_rate"] == 1.0 and r.deployment == {"tensor_parallel_size": 8}
    assert r.unknown is None and any("inferred" in a or "mean" in a for a in r.assumptions)


def test_bench_json_needs_its_setup(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(BENCH_JSON))
    with pytest.raises(SpecError, match="run.json.*model, hw, precision"):
        load_bench_json(path, {})
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(SpecError, match="not a vllm bench serve"):
        load_bench_json(bad, {"model": "m", "hw": "h", "precision": "fp8"})


def test_fit_recovers_known_parameters():
    """Synthetic measurements from known parameters: the fit must find them again."""
    truth = CostParams(gemm_eff_bf16=0.5, hbm_eff=0.65)
    rows = []
    for conc, osl in ((8, 1), (32, 1), (16, 24), (48, 24)):
        bench = {
            "num_prompts": 60,
            "random_input_len": 1024,
            "random_output_len": osl,
            "max_concurrency": conc,
        }
        res = predict(
            "deepseek-r1", "gb300", "fp4", deployment={"tensor_parallel_size": 2}, bench=bench, params=truth
        ).result
        metrics = ["total_token_throughput", "mean_ttft_ms"] + (["mean_tpot_ms"] if osl > 1 else [])
        for metric in metrics:
            rows.append(_row(f"g{conc}-{osl}", bench, metric, res[metric]))
    ev = Evaluator(rows, workers=1)
    result = fit(ev, names=("gemm_eff_bf16", "hbm_eff"), max_nfev=40, prior_weight=0.0)
    assert result.params.gemm_eff_bf16 == pytest.approx(0.5, rel=0.05)
    assert result.params.hbm_eff == pytest.approx(0.65, rel=0.05)
    assert np.nanmax(np.abs(errors_pct(rows, result.predictions))) < 2.0


def _row(group, bench, metric, value):
    from perfsim.calibration.measurements import Measurement

    scope = "deployment" if metric.endswith("throughput") else "request"
    return Measurement(
        group,
        "deepseek-r1",
        "gb300",
        "fp4",
        {"tensor_parallel_size": 2},
        bench,
        metric,
        value,
        scope,
        "synthetic",
    )


def test_unfitted_gemm_precision_follows_the_fitted_derating():
    fitted = CostParams(gemm_eff_nvfp4=0.65 * 0.64, gemm_eff_bf16=0.80 * 0.81)  # derated 0.64x and 0.81x
    tied, why = tie_gemm_efficiencies(fitted, ["gemm_eff_nvfp4", "gemm_eff_bf16", "hbm_eff"])
    assert tied.gemm_eff_fp8 == pytest.approx(0.80 * 0.72)  # geometric mean of 0.64 and 0.81 is 0.72
    assert (tied.gemm_eff_nvfp4, tied.gemm_eff_bf16) == (fitted.gemm_eff_nvfp4, fitted.gemm_eff_bf16)
    assert set(why) == {"gemm_eff_fp8"} and "geometric mean" in why["gemm_eff_fp8"]
    assert tie_gemm_efficiencies(fitted, ["hbm_eff"]) == (fitted, {})  # nothing fitted: nothing derived


class _OneParam:
    """Evaluator stand-in without simulation: one row whose prediction scales as 1 / the named efficiency."""

    def __init__(self, name: str, measured: float):
        self.name, self.rows = name, [_row("a", {}, "mean_tpot_ms", measured)]

    def predict(self, params: CostParams) -> np.ndarray:
        return np.array([10.0 * getattr(CostParams(), self.name) / getattr(params, self.name)])


def test_hbm_prior_is_narrower_than_kernel_efficiency_priors():
    # one row asking for 0.6x of the default efficiency: a kernel efficiency follows it, HBM streaming (published
    # at 0.82-0.92 of peak, prior +-10 %) moves only part of the way
    want = 10.0 / 0.6
    bf16 = fit(_OneParam("gemm_eff_bf16", want), names=("gemm_eff_bf16",)).params.gemm_eff_bf16 / 0.80
    hbm = fit(_OneParam("hbm_eff", want), names=("hbm_eff",)).params.hbm_eff / 0.85
    assert bf16 < 0.65 and 0.7 < hbm < 0.8


def test_default_fit_params_follow_the_precisions_of_the_rows():
    fp4 = default_fit_params([_row("a", {}, "mean_tpot_ms", 1.0)])
    assert fp4[:2] == ("gemm_eff_nvfp4", "gemm_eff_bf16") and "gemm_eff_fp8" not in fp4 and "hbm_eff" in fp4
    fp8_row = dataclasses.replace(_row("a", {}, "mean_tpot_ms", 1.0), precision="fp8")
    assert default_fit_params([fp8_row])[:2] == ("gemm_eff_fp8", "gemm_eff_bf16")


def test_error_summary_by_hand():
    rows = [
        _row("a", {}, "total_token_throughput", 100.0),
        _row("a", {}, "total_token_throughput", 200.0),
        _row("b", {}, "mean_ttft_ms", 10.0),
    ]
    summary = error_summary(rows, np.array([110.0, 150.0, 10.5]))
    assert summary["throughput"]["median_abs_pct"] == pytest.approx(17.5)  # |+10%|, |-25%|
    assert summary["ttft"]["median_abs_pct"] == pytest.approx(5.0)


# ---- the committed profile ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def profile():
    prof = read_profile("default")
    assert prof is not None, "calibrations/vllm-0.14.1.yaml must be committed"
    return prof


def test_profile_records_data_date_domain_and_errors(profile):
    assert profile["engine"] == "vllm 0.14.1" and profile["fitted"]
    assert profile["domain"]["hardware"] == ["gb300"]
    for key in ("params", "fit_error", "cv_error", "cv_residuals", "fold_params"):
        assert profile[key]
    for name, p in profile["params"].items():
        lo, hi = CostParams.bounds(name)
        assert lo <= p["value"] <= hi  # physical: an efficiency never exceeds 1


def test_predictions_carry_provenance_and_error_band(profile):
    gb300, h200 = load_hardware("gb300"), load_hardware("h200")
    assert "calibrated on this hardware" in load_params("default", gb300)[1]
    assert "transferred from gb300" in load_params("default", h200)[1]
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


def test_accuracy_gate(profile):
    """Leave-one-group-out error on the committed measurements must not regress by more than 2 points.

    Each group is predicted with the parameters fitted without it (stored in the profile by
    `perfsim calibrate`), so any change to the simulator or the cost model that worsens predictions of
    unseen runs fails here. Refit (`perfsim calibrate --out calibrations/vllm-0.14.1.yaml`) after a
    deliberate change of the physics.
    """
    rows = [r for r in load_measurements() if r.unknown is None]
    ev = Evaluator(rows, workers=2)
    predictions = np.full(len(rows), np.nan)
    try:
        for group, values in profile["fold_params"].items():
            mask = np.array([r.group == group for r in rows])
            params = CostParams(**values)
            sub = Evaluator([r for r, m in zip(rows, mask, strict=True) if m], workers=1)
            predictions[mask] = sub.predict(params)
    finally:
        ev.close()
    summary = error_summary(rows, predictions)
    for cls, recorded in profile["cv_error"].items():
        assert summary[cls]["median_abs_pct"] <= recorded["median_abs_pct"] + 2.0, (
            cls,
            summary[cls],
            recorded,
        )
        assert math.isfinite(summary[cls]["p90_abs_pct"])


def test_validate_cli_prints_errors_and_plots(tmp_path, capsys):
    plot = tmp_path / "parity.png"
    assert main(["validate", "--plot", str(plot), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "by metric" in out and "throughput" in out and "concurrency not stated" in out
    assert plot.exists() and plot.stat().st_size > 10_000


def test_validate_json_spec_only(capsys):
    assert main(["validate", "--calibration", "none", "--json", "--workers", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["calibration"].startswith("spec-only")
    assert data["by_metric"]["throughput"]["median_abs_pct"] > 0


def test_calibrate_cli_writes_a_profile(tmp_path, capsys):
    rows_csv = tmp_path / "mini.csv"
    rows_csv.write_text(
        "group,model,precision,hardware,gpus,parallel,isl,osl,num_prompts,concurrency,metric,value,scope\n"
        "a,deepseek-r1,fp4,gb300,2,tp2,1024,1,40,8,total_token_throughput,15000,per_gpu\n"
        "b,deepseek-r1,fp4,gb300,2,tp2,1024,16,40,8,mean_tpot_ms,30,request\n"
    )
    out = tmp_path / "mini.yaml"
    assert (
        main(
            [
                "calibrate",
                str(rows_csv),
                "--out",
                str(out),
                "--params",
                "gemm_eff_nvfp4,hbm_eff",
                "--max-nfev",
                "8",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    prof = yaml.safe_load(out.read_text())
    fitted = {k for k, v in prof["params"].items() if "derived" not in v}
    assert fitted == {"gemm_eff_nvfp4", "hbm_eff"} and prof["cv_error"]
    assert {k for k, v in prof["params"].items() if "derived" in v} == {"gemm_eff_fp8", "gemm_eff_bf16"}
    ratio = prof["params"]["gemm_eff_nvfp4"]["value"] / 0.65  # the fitted derating carries over to both
    assert prof["params"]["gemm_eff_fp8"]["value"] == pytest.approx(0.80 * ratio, rel=1e-3)
    assert prof["params"]["gemm_eff_bf16"]["value"] == pytest.approx(0.80 * ratio, rel=1e-3)
    assert main(["calibrate", str(rows_csv), "--params", "warp_speed"]) == 2
