"""Measurement readers: the bundled tables with their sidecars, source tables, bench-serve JSON files."""

from __future__ import annotations

import json

import pytest

from perfsim.calibration.measurements import load_bench_json, load_measurements, parse_parallel
from perfsim.errors import SpecError
from perfsim.prediction import predict


def test_bundled_measurements_load_with_provenance():
    rows = load_measurements()
    gb300 = [r for r in rows if r.source.startswith("vllm-0.14.1-gb300-deepseek.csv:")]
    gb200 = [r for r in rows if r.source.startswith("vllm-gb200-wide-ep-deepseek.csv:")]
    imax = [r for r in rows if r.source.startswith("inferencemax-vllm-0.13.0-gpt-oss-120b.csv:")]
    assert (len(gb300), len(gb200), len(imax), len(rows)) == (58, 24, 837, 919)
    assert {r.engine_version for r in imax} == {"0.13.0"} and {r.engine_version for r in gb300} == {"0.14.1"}
    unknown = [r for r in gb300 if r.unknown]
    assert len(unknown) == 1 and unknown[0].value == 2816 and "concurrency" in unknown[0].unknown
    ep = next(r for r in rows if r.group == "r1-prefill-ep2")
    assert ep.deployment["data_parallel_size"] == 2 and ep.deployment["enable_expert_parallel"]
    assert ep.deployment["tensor_parallel_size"] == 1 and ep.model == "deepseek-r1" and ep.precision == "fp4"
    assert ep.deployment["max_num_batched_tokens"] == 32768
    assert any("recommended" in a for a in ep.assumptions)


def test_gb200_source_table_rows_by_their_sidecar_rules():
    rows = [r for r in load_measurements() if r.hw == "gb200"]
    by_kind = {
        k: [r for r in rows if r.kind == k and r.unknown is None] for k in ("decode_steady_state", "kernel")
    }
    decode = by_kind["decode_steady_state"]
    assert [r.value for r in decode] == [10108, 11035, 11182, 12534]
    assert all(r.metric == "output_throughput" and r.scope == "per_gpu" for r in decode)
    assert decode[0].deployment == {
        "tensor_parallel_size": 1,
        "data_parallel_size": 8,
        "enable_expert_parallel": True,
        "max_num_seqs": 512,
    }
    assert dict(decode[0].module_dtypes) == {"o_proj": "nvfp4", "q_b": "fp8"}
    mla = [r for r in by_kind["kernel"] if r.kernel_op == "mla_prefill_attention"]
    moe = [r for r in by_kind["kernel"] if r.kernel_op == "moe_routed_experts"]
    # 'total tokens=N' at seq_len 2048: N / 2048 sequences
    assert [r.bench["max_concurrency"] for r in mla] == [4, 8, 16, 32]
    assert [r.bench["max_concurrency"] for r in moe] == [4, 8, 16, 32, 64]
    assert [r.value for r in moe] == [2230, 4126, 7473, 14413, 28296]
    unknown = [r for r in rows if r.unknown]
    # the P/D prefill (weight offloading), the P/D decode (a duplicate) and the 9 throughput = tokens/latency rows
    assert len(unknown) == 11 and all(r.bench is None for r in unknown)
    assert any("weight offloading" in r.unknown for r in unknown)


def test_source_table_needs_rules_that_match(tmp_path):
    from perfsim.paths import data_dir

    table = (data_dir("measurements") / "vllm-gb200-wide-ep-deepseek.csv").read_text()
    path = tmp_path / "other-source.csv"
    path.write_text(table)
    with pytest.raises(SpecError, match="needs a YAML sidecar"):
        load_measurements([path])
    sidecar = tmp_path / "other-source.yaml"
    sidecar.write_text(
        "model: deepseek-r1\nprecision: fp4\nhw: gb200\nrows:\n  - where: {metric: kernel_latency}\n"
    )
    with pytest.raises(SpecError, match=r"other-source.yaml.*rows\[0\].*needs 'group'"):
        load_measurements([path])
    sidecar.write_text(
        "model: deepseek-r1\nprecision: fp4\nhw: gb200\nrows:\n"
        "  - where: {metric: kernel_latency}\n    unknown: not modelled\n"
    )
    with pytest.raises(SpecError, match=r"other-source.csv:2: no rule of other-source.yaml matches"):
        load_measurements([path])


def test_assume_fills_an_unknown_setting():
    rows = load_measurements(assume={"concurrency": 512})
    headline = next(r for r in rows if r.value == 2816)
    assert headline.unknown is None and headline.bench["max_concurrency"] == 512
    assert any("command line" in a for a in headline.assumptions)


def test_a_moved_copy_of_the_bundled_table_keeps_its_settings(tmp_path):
    from perfsim.calibration.measurements import default_measurement_files

    bundled = next(p for p in default_measurement_files() if p.name == "vllm-0.14.1-gb300-deepseek.csv")
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
        "request_throughput",
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
    with pytest.raises(SpecError, match="run.json.*say hw for this run"):
        load_bench_json(path, {})
    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps({**BENCH_JSON, "mean_ttft_ms": float("nan")}))  # json writes NaN
    with pytest.raises(SpecError, match="'mean_ttft_ms' is nan, expected a finite number"):
        load_bench_json(nan, {"model": "deepseek-r1", "hw": "h200", "precision": "fp8"})
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(SpecError, match="not a vllm bench serve"):
        load_bench_json(bad, {"model": "m", "hw": "h", "precision": "fp8"})


def test_append_result_files_validate_from_their_model_id_and_metadata(tmp_path):
    """Two runs appended to one file by bench serve --append-result, written with --metadata hw=gb300
    tensor_parallel_size=2: no sidecar needed, every saved metric is a row."""
    run = {
        **BENCH_JSON,
        "model_id": "nvidia/DeepSeek-R1-0528-NVFP4",
        "hw": "gb300",
        "tensor_parallel_size": "2",
        "median_itl_ms": 26.0,
        "p99_e2el_ms": 4100.0,
        "std_ttft_ms": 12.0,
        "request_goodput": None,
    }
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(run) + "\n" + json.dumps({**run, "max_concurrency": 8}))
    rows = load_bench_json(path, {})
    assert {r.group for r in rows} == {"runs#1", "runs#2"}
    first = [r for r in rows if r.group == "runs#1"]
    assert {"median_itl_ms", "p99_e2el_ms", "std_ttft_ms", "mean_tpot_ms"} <= {r.metric for r in first}
    r = first[0]
    assert r.model == "nvidia/DeepSeek-R1-0528-NVFP4" and r.hw == "gb300" and r.precision == "auto"
    assert r.deployment == {"tensor_parallel_size": "2"} and "99" in r.bench["metric_percentiles"]


def test_inferencemax_rows_carry_the_benchmark_flags_and_the_client_lengths():
    rows = [r for r in load_measurements() if r.engine_version == "0.13.0"]
    b200 = next(r for r in rows if r.hw == "b200" and r.bench["max_concurrency"] == 64)
    h200 = next(r for r in rows if r.hw == "h200" and r.bench["max_concurrency"] == 16)
    assert b200.deployment["kv_cache_dtype"] == "fp8" and b200.deployment["mxfp4_moe_activation"] == "mxfp8"
    assert (
        b200.deployment["max_num_seqs"] == 512 and h200.deployment["max_num_seqs"] == 16
    )  # --max-num-seqs CONC
    assert "kv_cache_dtype" not in h200.deployment  # BF16 KV on H200 (auto)
    # the client draws lengths from [0.8 L, L]: vLLM's random dataset with 0.9 L and range ratio 0.1 / 0.9
    one_k = next(r for r in rows if r.group.endswith("1024x1024"))
    assert one_k.bench["random_input_len"] == 922 and one_k.bench["random_range_ratio"] == pytest.approx(
        1 / 9, abs=1e-6
    )
    assert any("[0.8 L, 1 L]" in a for a in one_k.assumptions)
    assert {r.precision for r in rows} == {"mxfp4"} and {r.model for r in rows} == {"gpt-oss-120b"}


def test_perfsim_validates_its_own_saved_results_without_a_sidecar(tmp_path, monkeypatch, capsys):
    """A round trip: what predict --save-result writes (hw from --metadata) validates at 0 % error."""
    from perfsim.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["predict", "--model", "nvidia/DeepSeek-R1-0528-NVFP4", "-tp", "2", "--num-prompts", "20"]
    argv += ["--max-num-batched-tokens", "16384", "--kv-cache-dtype", "fp8"]  # settings only perfsim stores
    argv += ["--random-input-len", "1000", "--random-output-len", "20", "--max-concurrency", "8"]
    assert main([*argv, "--save-result", "--metadata", "hw=gb300", "--json", "mine.json"]) == 0
    saved = next(tmp_path.glob("vllm-*.json"))
    capsys.readouterr()
    for path in (saved, tmp_path / "mine.json"):
        assert main(["validate", str(path), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert len(report["rows"]) >= 12 and all(abs(r["error_pct"]) < 1e-6 for r in report["rows"]), path
