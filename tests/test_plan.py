"""Capacity planning: the frontier, the command lines, a recommendation checked by hand reasoning, the CLI's
JSON on the local pool, Dask and Ray, resuming, and large plans that must be confirmed."""

from __future__ import annotations

import json
import math
import shlex

import pytest

from perfsim.cli import main
from perfsim.frontier import pareto_front
from perfsim.planning import plan
from perfsim.planning.commands import bench_command, serve_commands

#: a small plan: single instances of DeepSeek-V3.2 NVFP4 on up to 4 GB300s, short requests
SMALL = {
    "max_gpus": 4,
    "disaggregated": "off",
    "enable_dbo": "off",
    "random_input_len": 1024,
    "random_output_len": 32,
    "num_prompts": 30,
    "max_concurrency": [4, 16],
}
SMALL_FLAGS = (
    "--max-gpus 4 --disaggregated off --enable-dbo off --random-input-len 1024 --random-output-len 32 "
    "--num-prompts 30 --max-concurrency 4 16 --goodput ttft:3000 tpot:60"
)


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    xs = [1.0, 2.0, 3.0, 2.0, 0.5, math.nan, 3.0]
    ys = [9.0, 5.0, 1.0, 4.0, 9.0, 99.0, 1.0]
    # (1, 9) beats (0.5, 9); (2, 5) beats (2, 4); NaN is never on it; of the tied (3, 1) the first stays
    assert pareto_front(xs, ys) == [0, 1, 2]


def test_command_lines_are_vllms_flags_for_the_deployment():
    settings = {
        "tensor_parallel_size": 1,
        "data_parallel_size": 8,
        "enable_expert_parallel": True,
        "all2all_backend": "deepep_low_latency",
        "enable_dbo": True,
        "num_speculative_tokens": 1,
    }
    (serve,) = serve_commands("nvidia/DeepSeek-V3.2-NVFP4", None, settings)
    assert shlex.split(serve) == [
        *[
            "vllm",
            "serve",
            "nvidia/DeepSeek-V3.2-NVFP4",
            "-tp",
            "1",
            "-dp",
            "8",
            "--all2all-backend",
            "deepep_low_latency",
        ],
        *["--enable-expert-parallel", "--enable-dbo", "--speculative-config"],
        '{"method": "mtp", "num_speculative_tokens": 1}',
    ]
    pd = serve_commands(
        "m", "fp8", {"tensor_parallel_size": 2, "num_prefill_instances": 1, "num_decode_instances": 2}
    )
    assert (
        len(pd) == 2 and "--quantization fp8" in pd[0] and "--kv-transfer-config" in pd[0] and "x2" in pd[1]
    )
    bench = bench_command(
        "m",
        {
            "random_input_len": 2048,
            "random_output_len": 1024,
            "num_prompts": 300,
            "max_concurrency": 64,
            "random_range_ratio": 0.0,
        },
        ["ttft:3000", "tpot:60"],
    )
    assert bench == (
        "vllm bench serve --model m --dataset-name random --random-input-len 2048 --random-output-len 1024 "
        "--num-prompts 300 --max-concurrency 64 --ignore-eos --goodput ttft:3000 tpot:60"
    )


def test_the_recommendation_follows_hand_reasoning_on_tp2_against_tp4():
    """At a small batch, decode streams the weights: TP4 splits them over twice the GPUs, so its TPOT is lower
    but its output per GPU is lower too. A TPOT objective between the two is met only by TP4 (recommended);
    a loose one by both, and TP2 gives more goodput per GPU; one below both is met by none."""
    space = {  # decode-bound: four requests at a time, short prompts, each TPOT about one decode step
        **SMALL,
        "tensor_parallel_size": [2, 4],
        "data_parallel_size": [1],
        "expert_parallel": "off",
        "max_concurrency": [4],
        "num_prompts": 8,
        "random_input_len": 128,
        "random_output_len": 128,
    }
    first = plan(progress=False, workers=1, **space)
    tp2, tp4 = sorted(first.candidates, key=lambda c: c["settings"]["tensor_parallel_size"])
    assert (
        tp4["mean_tpot_ms"] < tp2["mean_tpot_ms"]
        and tp4["output_tok_s_per_gpu"] < tp2["output_tok_s_per_gpu"]
    )
    between = (tp4["p99_tpot_ms"] + tp2["mean_tpot_ms"]) / 2
    assert tp4["p99_tpot_ms"] < between < tp2["mean_tpot_ms"]  # every TP4 request meets it, TP2's mean misses
    sets = [[f"tpot:{between}"], [f"tpot:{2 * tp2['p99_tpot_ms']}"], [f"tpot:{tp4['mean_tpot_ms'] / 2}"]]
    result = plan(progress=False, workers=1, goodput=sets, **space)
    tight, loose, impossible = result.recommended
    assert tight["shape"] == "tp4" and tight["vllm_serve"] == ["vllm serve nvidia/DeepSeek-V3.2-NVFP4 -tp 4"]
    assert loose["shape"] == "tp2"
    assert (
        impossible["candidate"] is None
        and "no deployment meets it: the closest is tp4" in impossible["reason"]
    )


def test_plan_cli_writes_candidates_and_a_recommendation_identical_on_every_executor(tmp_path, capsys):
    pytest.importorskip("distributed")
    pytest.importorskip("ray")
    outputs = {}
    for executor in ("local", "dask", "ray"):
        out = tmp_path / f"{executor}.json"
        argv = ["plan", *SMALL_FLAGS.split(), "--executor", executor, "--workers", "2", "--json", str(out)]
        assert main(argv) == 0, capsys.readouterr().err
        outputs[executor] = out.read_bytes()
        assert not (
            tmp_path / f"{executor}.json.journal.jsonl"
        ).exists()  # removed once the output is written
    assert outputs["dask"] == outputs["local"] and outputs["ray"] == outputs["local"]
    data = json.loads(outputs["local"])
    assert len(data["candidates"]) >= 10 and set(data) >= {"candidates", "recommended"}
    (pick,) = data["recommended"]
    assert pick["vllm_serve"][0].startswith("vllm serve nvidia/DeepSeek-V3.2-NVFP4 ")
    assert any("does not fit on 1 x gb300 with -tp 1" in p["reason"] for p in data["pruned"])
    assert "recommended for ttft:3000 tpot:60:" in capsys.readouterr().out


def test_an_interrupted_plan_resumes_from_its_journal(tmp_path, capsys):
    from perfsim.executors import Journal
    from perfsim.planning.config import PlanConfig
    from perfsim.planning.plan import plan_points
    from perfsim.specs.setup import Setup

    space = {**SMALL, "tensor_parallel_size": [2], "data_parallel_size": [1], "expert_parallel": "off"}
    _stubs, points, _ = plan_points(Setup(), PlanConfig(**space), "default")
    out = tmp_path / "plan.json"
    journal = Journal(tmp_path / "plan.json.journal.jsonl", points)
    journal.start()
    journal.add(
        points[0],
        {
            "error": None,
            "marker": "from before the interruption",
            "num_gpus": 2,
            "output_tok_s_per_gpu": 1.0,
            "output_tok_s_per_user": 1.0,
        },
    )
    flags = "--tensor-parallel-size 2 --data-parallel-size 1 --expert-parallel off --max-gpus 4 --disaggregated off "
    flags += "--enable-dbo off --random-input-len 1024 --random-output-len 32 --num-prompts 30 --max-concurrency 4 16"
    assert main(["plan", *flags.split(), "--workers", "1", "--json", str(out)]) == 0
    assert "resuming from" in capsys.readouterr().out
    first, second = json.loads(out.read_text())["candidates"]
    assert first["marker"] == "from before the interruption" and "marker" not in second  # not recomputed


def test_plans_past_5000_simulations_must_be_confirmed(capsys):
    code = main(["plan", "-tp", "2", "4", "--max-concurrency", *map(str, range(1, 2600))])
    captured = capsys.readouterr()
    assert code == 2 and "the plan has" in captured.err and "add --yes to run it" in captured.err
    assert "plan: " in captured.out and "simulations, about" in captured.out


def test_the_frontier_plot_marks_the_recommendation(tmp_path):
    from perfsim.plots import frontier_plot

    result = plan(
        progress=False,
        workers=1,
        goodput=[["tpot:500"]],
        **{**SMALL, "tensor_parallel_size": [2, 4], "data_parallel_size": [1], "expert_parallel": "off"},
    )
    fig = frontier_plot(result.candidates, tmp_path / "frontier.png", recommended=result.recommended)
    assert (tmp_path / "frontier.png").stat().st_size > 10_000
    stars = [c for c in fig.axes[0].collections if hasattr(c, "get_sizes") and list(c.get_sizes()) == [220]]
    assert len(stars) == 1  # the one recommendation


def test_a_plan_at_request_rates_benchmarks_every_rate_and_says_so_in_its_command():
    space = {k: v for k, v in SMALL.items() if k != "max_concurrency"}  # rates only, no concurrency cap
    space.update(tensor_parallel_size=[2], data_parallel_size=[1], expert_parallel="off")
    result = plan(progress=False, workers=1, request_rate=[2.0, 8.0], goodput=[["ttft:5000"]], **space)
    assert [c["load"] for c in result.candidates] == [
        "2 req/s",
        "8 req/s",
    ]  # the default concurrencies unused
    assert result.candidates[1]["request_throughput"] > result.candidates[0]["request_throughput"]
    (pick,) = result.recommended
    assert (
        "--request-rate" in pick["vllm_bench_serve"] and "--max-concurrency" not in pick["vllm_bench_serve"]
    )


def test_pd_candidates_with_a_wider_decode_shape_count_its_gpus_and_get_their_own_serve_line():
    from perfsim.planning.candidates import enumerate_candidates
    from perfsim.planning.config import PlanConfig
    from perfsim.planning.plan import shape_of
    from perfsim.specs.setup import Setup

    model, hw = Setup().load()
    space = PlanConfig(
        max_gpus=24,
        tensor_parallel_size=[1],
        data_parallel_size=[4],
        expert_parallel="on",
        all2all_backend=["deepep_high_throughput"],
        enable_dbo="off",
        disaggregated="on",
        pd_ratios=["2:1"],
        decode_data_parallel_size=[4, 16],
    )
    fitting, _ = enumerate_candidates(model, hw, space)
    # 2 prefill instances of DP4 + 1 decode of DP4 (12 GPUs) or of DP16 (24); DP4 is the prefill shape, listed once
    assert [(shape_of(c.settings), c.num_gpus) for c in fitting] == [
        ("tp1 dp4 EP deepep_high_throughput 2P1D", 12),
        ("tp1 dp4 EP deepep_high_throughput 2P1D (D: dp16 deepep_low_latency)", 24),
    ]
    prefill, decode = serve_commands("m", None, fitting[1].settings)
    assert "-dp 4 --all2all-backend deepep_high_throughput" in prefill and "x2" in prefill
    assert "-dp 16 --all2all-backend deepep_low_latency" in decode and "x1" in decode
