"""Whole `vllm serve` / `vllm bench serve` command lines after `--`, and `--quantization` against the checkpoint."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from perfsim.cli import _parse, build_parser, main
from perfsim.errors import SpecError
from perfsim.specs.setup import Setup

README = Path(__file__).resolve().parent.parent / "README.md"


def parse(line: str):
    return _parse(build_parser(), shlex.split(line))


def test_both_lines_become_the_flags_they_stand_for():
    args = parse(
        "predict --hw gb200 -- vllm serve deepseek-ai/DeepSeek-V3.2 -tp 4 --max-num-seqs 128 --seed 3 --port 8001"
        " -- vllm bench serve --model deepseek-ai/DeepSeek-V3.2 --dataset-name random --random-input-len 100"
        " --num-prompts 7 --seed 5 --port 8001"
    )
    assert (args.hw, args.model) == ("gb200", "deepseek-ai/DeepSeek-V3.2")
    assert (args.tensor_parallel_size, args.max_num_seqs) == (4, 128)
    assert (args.random_input_len, args.num_prompts) == (100, 7)
    assert args.seed == 5  # bench serve's dataset seed; serve's --seed is the engine's sampling seed
    assert args.ignored_vllm_flags == ["vllm serve --seed 3", "--port 8001"]  # once, though given twice


def test_serve_config_file_is_read_as_vllm_reads_it_and_the_line_wins(tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text("tensor-parallel-size: 4\nmax-num-seqs: 96\nenable-dbo: false\nenforce-eager: true\n")
    args = parse(f"predict -- vllm serve dsv32 --config {config} -tp 2")
    assert (args.tensor_parallel_size, args.max_num_seqs, args.enforce_eager) == (2, 96, True)
    assert "enable_dbo" not in vars(args)  # false adds nothing, as in vLLM
    assert str(config) in args.pasted_inputs


def test_an_output_may_not_overwrite_the_pasted_config_file(capsys, tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text("max-num-seqs: 96\n")
    code = main(["predict", "--json", str(config), "--", "vllm", "serve", "dsv32", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "is also an input" in err and config.read_text() == "max-num-seqs: 96\n"


@pytest.mark.parametrize(
    ("pasted", "says"),
    [
        ("-- vllm serve -tp 4", "`vllm serve` needs its model"),
        ("-- vllm bench serve --tensor-parallel-size 4", "is a `vllm serve` flag"),
        ("-- vllm serve dsv32 --random-input-len 5", "is a `vllm bench serve` flag"),
        ("-- vllm serve dsv32 --hw gb200", "a perfsim flag: put it before `--`"),
        ("-- vllm serve dsv32 -- vllm bench serve --model other", "is not the model `vllm serve` serves"),
        (
            "--max-num-seqs 4 -- vllm serve dsv32 --max-num-seqs 8",
            "--max-num-seqs is given before `--` and again",
        ),
        ("--model dsv32 -- vllm serve dsv32", "--model is given before `--` and again"),
        ("-- vllm serve dsv32 -- vllm serve dsv32", "may be pasted once"),
        (
            "-- python -m vllm.entrypoints.openai.api_server",
            "got `python -m vllm.entrypoints.openai.api_server`",
        ),
        ("-- vllm serve dsv32 --max-num-seq 3", "did you mean --max-num-seqs?"),
        ("-- vllm bench serve --dataset-name sharegpt", "perfsim simulates --dataset-name random only"),
        ("-- vllm serve dsv32 -tp 4 stray", "unexpected argument stray"),
        ("-- vllm serve dsv32 --config serve.json", "vLLM takes a .yaml or .yml file"),
    ],
)
def test_pasted_lines_vllm_would_refuse_are_one_clear_line(capsys, pasted, says):
    code = main(["predict", *shlex.split(pasted)])
    captured = capsys.readouterr()
    assert code == 2 and says in captured.err, captured.err
    assert captured.err.count("\n") == 1 and captured.err.startswith("perfsim: error:")
    assert "Serving Benchmark" not in captured.out  # refused before simulating


def test_the_readme_pasted_example_is_the_deployment_it_shows():
    block = re.search(r"Or paste both command lines.*?```bash\n(.*?)```", README.read_text(), re.S)
    assert block, "README: the pasted-command-lines example is gone"
    args = _parse(build_parser(), shlex.split(block.group(1).replace("\\\n", " "))[1:])
    assert (args.model, args.hw, args.tensor_parallel_size) == ("nvidia/DeepSeek-R1-0528-NVFP4", "gb300", 2)
    assert (args.max_num_batched_tokens, args.random_input_len, args.random_output_len) == (32768, 2048, 1024)
    assert (args.max_concurrency, args.num_prompts) == (256, 1000)


def test_quantization_must_match_the_checkpoint_as_vllm_checks():
    fp8 = Setup(model="deepseek-ai/DeepSeek-V3.2", quantization="fp8").load()[0]
    assert fp8.recipe.precision == "fp8"
    assert (
        Setup(model="nvidia/DeepSeek-V3.2-NVFP4", quantization="modelopt_fp4").load()[0].recipe.precision
        == "fp4"
    )
    with pytest.raises(SpecError, match="quantized with fp8, and vLLM refuses a different --quantization"):
        Setup(model="deepseek-ai/DeepSeek-V3.2", quantization="modelopt_fp4").load()
    with pytest.raises(SpecError, match="--precision .* is quantized with modelopt_fp4"):
        Setup(model="deepseek-v3.2", precision="fp4", quantization="fp8").load()


def test_fp8_quantization_of_an_unquantized_checkpoint_is_online_fp8():
    from perfsim.costs.memory import model_weight_bytes

    bf16 = Setup(model="mixtral-8x7b", hw="h200").load()[0]
    online = Setup(model="mixtral-8x7b", hw="h200", quantization="fp8").load()[0]
    assert bf16.recipe.precision == "bf16" and online.recipe.precision == "fp8"
    assert "quantized online" in online.recipe.checkpoint
    assert model_weight_bytes(online) < 0.55 * model_weight_bytes(
        bf16
    )  # FP8 halves every linear layer's weights
    with pytest.raises(SpecError, match="unquantized .* only online FP8"):
        Setup(model="mixtral-8x7b", quantization="mxfp4").load()


def test_an_unknown_quantization_is_refused_with_vllms_choices(capsys):
    code = main(["predict", "-q", "int3"])
    err = capsys.readouterr().err
    assert code == 2 and "invalid choice: 'int3'" in err and "modelopt_fp4" in err


def test_summary_and_json_name_the_checkpoint_its_module_precisions_and_quantization(capsys):
    import json

    small = ["--num-prompts", "4", "--random-input-len", "200", "--random-output-len", "2"]
    assert main(["predict", "--model", "deepseek-ai/DeepSeek-V3.2", *small, "--json", "-"]) == 0
    config = json.loads(capsys.readouterr().out)[0]["config"]
    assert config["checkpoint"].startswith("deepseek-ai/DeepSeek-V3.2") and config["quantization"] == "fp8"
    assert (
        config["module_precisions"]["routed_experts"] == "fp8"
        and config["module_precisions"]["router"] == "bf16"
    )
    assert main(["predict", *small]) == 0
    out = capsys.readouterr().out
    assert (
        "Weights:                                 nvfp4 o_proj, dense_mlp, shared_expert, routed_experts; bf16 the rest"
        in out
    )
