"""The command line: inspection commands, JSON keys, and errors without tracebacks."""

from __future__ import annotations

import json

import pytest

import perfsim
from perfsim.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "gb300" in out and "deepseek-v3.2" in out and "deepseek-r1" in out


def test_show_hw_json(capsys):
    code, out, _ = run(capsys, "show", "hw", "gb300", "--json")
    data = json.loads(out)
    assert code == 0 and data["si"]["peak_dense_flops"]["nvfp4"] == 15e15
    assert data["spec"]["hbm_bandwidth"]["unit"] == "TB/s"


def test_show_model_json_keys(capsys):
    code, out, _ = run(capsys, "show", "model", "deepseek-v3.2", "--precision", "fp4", "--json")
    data = json.loads(out)
    assert code == 0
    for key in ("total_params", "active_params", "layers", "weight_bytes", "kv_bytes_per_token"):
        assert key in data
    assert data["kv_bytes_per_token"] == 48_068
    assert set(data["weight_bytes"]) == {"fp4", "fp8", "bf16"}
    assert data["layers"]["moe_layers"] == 58


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["predict", "--hw", "gb301"], "Known hardware names"),
        (["predict", "--model", "nope"], "Known model names"),
        (["predict", "-tp", "0"], "--tensor-parallel-size"),
        (["predict", "-tp", "3"], "does not divide the 128 attention heads"),
        (["predict", "-dp", "3", "--enable-expert-parallel"], "routed experts"),
        (["predict", "--precision", "fp8", "-tp", "2"], "-tp 4"),
        (["predict", "--num-prefill-instances", "1"], "num-decode-instances"),
        (["predict", "-dp", "72", "-tp", "1", "--enable-expert-parallel"], '"num_redundant_experts": 32'),
        (["predict", "--eplb-config", "{redundant: 32}"], "--eplb-config must be a JSON object"),
        (["predict", "--eplb-config", '{"num_redundant": 32}'], "num_redundant"),
        (
            ["predict", "-dp", "2", "--enable-expert-parallel", "--all2all-backend", "pplx"],
            "does not model yet",
        ),
        (["predict", "--enable-eplb"], "--enable-eplb needs --enable-expert-parallel"),
        (["predict", "--max-num-seq", "8"], "unrecognized flag --max-num-seq (did you mean --max-num-seqs?)"),
        (["predict", "--max-num", "8"], "unrecognized flag --max-num"),  # no silent abbreviations
        (["predict", "--goodput", "ttft=300"], "expected KEY:VALUE"),
        (["predict", "--seed", "-1"], "--seed: Input should be greater than or equal to 0"),
        (
            ["predict", "--random-input-len", "100000000000000000000"],
            "--random-input-len: Input should be less",
        ),
        (
            ["predict", "--num-prompts", "100000000000"],
            "--num-prompts: Input should be less than or equal to 1000000",
        ),
        (["predict", "--goodput", "itl:30"], "unknown metric itl; allowed: ttft, tpot, e2el"),
        (["predict", "stray"], "unrecognized argument stray"),
        (
            ["predict", "--speculative-config", '{"method": "eagle3", "num_speculative_tokens": 2}'],
            "not modelled",
        ),
        (["predict", "--speculative-config", '{"method": "mtp"}'], "needs num_speculative_tokens"),
        (
            [
                "predict",
                "--speculative-config",
                '{"num_speculative_tokens": 2}',
                "--num-speculative-tokens",
                "1",
            ],
            "contradicts",
        ),
        (["show", "hw", "/nonexistent/x.yaml"], "file not found"),
    ],
)
def test_bad_input_is_one_clear_line(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and err.startswith("perfsim: error:")


@pytest.mark.parametrize("hw", ["gb300", "b300", "gb200", "b200", "h200", "h100"])
@pytest.mark.parametrize("model", ["deepseek-v3.2", "deepseek-r1", "deepseek-v2"])
@pytest.mark.parametrize("precision", ["fp4", "fp8", "bf16"])
def test_explain_everywhere(capsys, hw, model, precision):
    code, out, err = run(
        capsys,
        "explain",
        "--model",
        model,
        "--hw",
        hw,
        "--precision",
        precision,
        "--prefill",
        "2048x2",
        "--decode",
        "64@2048",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    step = data["step"]
    # the command costs exactly the step the Python API costs for the same batch and settings, both with the
    # default profile unless told otherwise
    api = perfsim.explain_step(
        [2048, 2048] + [1] * 64,
        [0, 0] + [2048] * 64,
        model=model,
        hw=hw,
        precision=precision,
        deployment={"tensor_parallel_size": data["tensor_parallel_size"]},
        must_fit=False,
    ).to_dict()
    assert step["total_s"] == pytest.approx(api["total_s"], rel=1e-12)
    assert [o["name"] for o in step["ops"]] == [o["name"] for o in api["ops"]]
    # and the step adds up: operators plus kernel boundaries make the GPU time, which bounds the period
    assert step["gpu_s"] == pytest.approx(
        sum(o["time_s"] for o in step["ops"]) + step["overhead_s"], rel=1e-12
    )
    assert step["total_s"] >= max(step["gpu_s"], step["launch_s"])


def test_explain_table_example(capsys):
    code, out, _ = run(
        capsys,
        "explain",
        "--hw",
        "gb300",
        "--precision",
        "fp4",
        "-tp",
        "2",
        "--prefill",
        "2048x8",
        "--decode",
        "256@2048",
    )
    assert code == 0 and "sparse_attn_prefill" in out and "moe_gate_up" in out and "step" in out


def test_explain_bad_batch_spec(capsys):
    code, _, err = run(capsys, "explain", "--prefill", "2048by8")
    assert code == 2 and "TOKENSxREQS" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "--version")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"perfsim {perfsim.__version__} (models vLLM 0.14.1")


def test_vllm_short_flags(capsys):
    """vLLM's own short spellings: -tp, -dp, -ep."""
    code, out, err = run(
        capsys, "predict", "--model", "deepseek-r1", "-tp", "1", "-dp", "2", "-ep", "--num-prompts", "8"
    )
    assert code == 0, err
    assert "2 x gb300 (tp1x dp2 EP)" in out


def test_speculative_config_json_sets_the_mtp_drafts():
    from perfsim.specs.deployment import Deployment

    dep = Deployment(speculative_config='{"method": "deepseek_mtp", "num_speculative_tokens": 2}')
    assert dep.num_speculative_tokens == 2


def test_pasted_vllm_flags_perfsim_does_not_model_are_a_note(capsys):
    code, out, err = run(
        capsys,
        *("predict", "--num-prompts", "8", "--random-input-len", "1000", "--random-output-len", "8"),
        *("--port", "8000", "--trust-remote-code", "--dataset-name", "random", "--ignore-eos", "--seed=3"),
    )
    assert code == 0, err
    assert (
        "vLLM flags perfsim does not model (no effect on the prediction): --port 8000, --trust-remote-code"
        in out
    )
    assert (
        "--dataset-name" not in out.split("perfsim does not model")[1].splitlines()[0]
    )  # assumed: the random set


def test_outputs_never_overwrite_inputs_nor_go_where_they_cannot_be_written(capsys, tmp_path):
    import os
    import shutil

    from perfsim.paths import data_dir

    hw = tmp_path / "mine.yaml"
    shutil.copy(data_dir("hardware") / "gb300.yaml", hw)
    before = hw.read_bytes()
    code, _, err = run(capsys, "predict", "--hw", str(hw), "--precision", "fp4", "--json", str(hw))
    assert code == 2 and "is also an input of this command" in err and hw.read_bytes() == before
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "predict", "--json", str(fifo))  # would block forever if opened
    assert code == 2 and "not a regular file" in err
    code, out, err = run(capsys, "predict", "--json", "/proc/perfsim.json")
    assert (
        code == 2 and "cannot be written there" in err and "Serving Benchmark" not in out
    )  # nothing simulated


def test_hostile_input_files_are_one_clear_line(capsys, tmp_path):
    import os

    fifo = tmp_path / "hw.yaml"
    os.mkfifo(fifo)  # reading it would block forever
    bomb = tmp_path / "bomb.yaml"
    levels = [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 14)]
    bomb.write_text("\n".join(["l0: &l0 [x, x, x, x, x, x, x, x, x]", *levels]) + "\n")
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 50 + "]" * 50 + "\n")
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as fh:
        fh.truncate(65 * 2**20)  # sparse: no disk used
    for path, needle in (
        (fifo, "is not a regular file"),
        (bomb, "more than 100 YAML aliases"),
        (deep, "nested deeper than 32 levels"),
        (huge, "perfsim reads files up to 64 MiB"),
    ):
        code, _, err = run(capsys, "show", "hw", str(path))
        assert code == 2 and needle in err and str(path) in err, (path, err)
        assert "Traceback" not in err and "internal error" not in err
