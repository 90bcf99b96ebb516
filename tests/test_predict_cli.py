"""``perfsim predict``: headline default, every flag, and the bench-serve JSON keys."""

from __future__ import annotations

import json

import pytest

from perfsim.cli import main

BENCH_SERVE_KEYS = [  # vllm bench serve --save-result, 0.14.1, generation task, default options, in order
    "date",
    "endpoint_type",
    "backend",
    "label",
    "model_id",
    "tokenizer_id",
    "num_prompts",
    "request_rate",
    "burstiness",
    "max_concurrency",
    "duration",
    "completed",
    "failed",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "request_goodput",
    "output_throughput",
    "total_token_throughput",
    "max_output_tokens_per_s",
    "max_concurrent_requests",
    "mean_ttft_ms",
    "median_ttft_ms",
    "std_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "std_tpot_ms",
    "p99_tpot_ms",
    "mean_itl_ms",
    "median_itl_ms",
    "std_itl_ms",
    "p99_itl_ms",
]
SMALL = ["--num-prompts", "24", "--random-input-len", "300", "--random-output-len", "12"]


def predict_json(capsys, *argv):
    code = main(["predict", *argv, "--json", "-"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_json_has_every_bench_serve_key_in_order(capsys):
    (result,) = predict_json(capsys, *SMALL)
    assert [k for k in result if k in BENCH_SERVE_KEYS] == BENCH_SERVE_KEYS
    assert result["num_gpus"] == 2 and result["config"]["tensor_parallel_size"] == 2
    assert result["total_token_throughput_per_gpu"] == pytest.approx(result["total_token_throughput"] / 2)
    assert result["completed"] == 24 and result["total_output_tokens"] == 24 * 12
    assert sum(result["step_time_breakdown"].values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("flags", "check"),
    [
        (["--model", "deepseek-r1"], lambda r: r["config"]["model"] == "deepseek-v3"),
        (["--hw", "b200"], lambda r: r["config"]["hw"] == "b200"),
        (["--precision", "fp8", "-tp", "4"], lambda r: r["config"]["precision"] == "fp8"),
        (["--tensor-parallel-size", "4"], lambda r: r["num_gpus"] == 4),
        (
            ["-dp", "2", "--enable-expert-parallel", "-tp", "1", "--model", "deepseek-r1"],
            lambda r: r["config"]["expert_parallel_size"] == 2 and r["num_gpus"] == 2,
        ),
        (
            ["--num-prefill-instances", "1", "--num-decode-instances", "2"],
            lambda r: r["num_gpus"] == 6 and r["mean_kv_transfer_ms"] > 0,
        ),
        (["--num-speculative-tokens", "1"], lambda r: 0 < r["spec_decode_acceptance_rate"] <= 100),
        (["--max-num-batched-tokens", "4096"], lambda r: r["config"]["max_num_batched_tokens"] == 4096),
        (
            ["--max-num-seqs", "8"],
            lambda r: r["config"]["max_num_seqs"] == 8 and r["mean_running_requests"] <= 8,
        ),
        (["--gpu-memory-utilization", "0.8"], lambda r: r["config"]["gpu_memory_utilization"] == 0.8),
        (["--kv-cache-dtype", "bfloat16"], lambda r: r["config"]["kv_cache_dtype"] == "bfloat16"),
        (["--random-range-ratio", "0.5"], lambda r: r["total_output_tokens"] != 24 * 12),
        (["--max-concurrency", "4"], lambda r: r["max_concurrency"] == 4),
        (["--request-rate", "50"], lambda r: r["request_rate"] == 50.0 and r["duration"] > 24 / 50 * 0.9),
        (["--seed", "7", "--random-range-ratio", "0.3"], lambda r: r["config"]["bench"]["seed"] == 7),
        (["--no-async-scheduling"], lambda r: r["config"]["async_scheduling"] is False),
        (
            ["--metric-percentiles", "50,90", "--percentile-metrics", "ttft,e2el"],
            lambda r: "p90_e2el_ms" in r and "p50_ttft_ms" in r and "mean_tpot_ms" not in r,
        ),
    ],
)
def test_every_flag_works(capsys, flags, check):
    (result,) = predict_json(capsys, *SMALL, *flags)
    assert check(result)


def test_predict_writes_json_file(tmp_path, capsys):
    path = tmp_path / "out.json"
    assert main(["predict", *SMALL, "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert isinstance(data, list) and len(data) == 1


def test_bad_workload_flags(capsys):
    assert main(["predict", "--random-range-ratio", "1.5"]) == 2
    assert "--random-range-ratio" in capsys.readouterr().err
    assert main(["predict", "--max-concurrency", "0"]) == 2
    assert "--max-concurrency" in capsys.readouterr().err


def test_bare_predict_runs_the_two_headline_scenarios(capsys):
    assert main(["predict", "--hw", "gb300", "--precision", "fp4"]) == 0
    out = capsys.readouterr().out
    assert "prefill-only ISL 2048 / OSL 1" in out and "mixed ISL 2048 / OSL 1024" in out
    assert out.count("Total token throughput per GPU (tok/s):") == 2
    assert "2 x gb300 (tp2)" in out


def test_save_result_writes_one_object_per_file_with_vllms_name(tmp_path, monkeypatch, capsys):
    from perfsim.cli import main

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764547200")  # 2025-12-01 00:00:00 UTC
    argv = ["predict", "--num-prompts", "8", "--random-input-len", "1000", "--random-output-len", "8"]
    argv += [
        "--max-concurrency",
        "4",
        "--save-result",
        "--result-dir",
        str(tmp_path / "out"),
        "--metadata",
        "gpu=gb300",
    ]
    assert main(argv) == 0
    files = list((tmp_path / "out").iterdir())
    assert [f.name for f in files] == ["vllm-infqps-concurrency4-DeepSeek-V3.2-NVFP4-20251201-000000.json"]
    saved = json.loads(files[0].read_text())
    assert isinstance(saved, dict) and saved["gpu"] == "gb300" and saved["completed"] == 8
    assert main(["predict", "--result-dir", str(tmp_path)]) == 2  # needs --save-result
    assert "add --save-result" in capsys.readouterr().err
