"""Hostile input, one category at a time: every case is one clear line and exit 2, before any simulation.

Categories as the interface issue lists them: malformed files and flag values, huge or nested input (files past
64 MiB, deep JSON/YAML, alias bombs, grids past the confirmation and hard limits), non-regular files (FIFOs,
folders, devices), absurd numbers, typos, bad paths and outputs that would overwrite an input. Each case must
give exit code 2 and one line ``perfsim: error: ...`` containing its needle, no "internal error", create no file
and change none, and finish within a hang guard (a watchdog, not a speed test).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
from pathlib import Path

import pytest

from perfsim.cli import main

#: seconds after which a case counts as hanging (every case takes well under a second)
HANG_GUARD_S = 60

BENCH_OK = {
    "date": "20261201-000000",
    "backend": "vllm",
    "model_id": "nvidia/DeepSeek-V3.2-NVFP4",
    "tokenizer_id": "x",
    "num_prompts": 10,
    "request_rate": "inf",
    "burstiness": 1.0,
    "max_concurrency": 4,
    "duration": 10.0,
    "completed": 10,
    "total_input_tokens": 10240,
    "total_output_tokens": 100,
    "request_throughput": 1.0,
    "output_throughput": 10.0,
    "total_token_throughput": 1034.0,
    "mean_ttft_ms": 100.0,
    "median_ttft_ms": 100.0,
    "hw": "gb300",
}


def corpus(tmp: Path) -> dict[str, tuple[str, list[str], str]]:
    """name -> (category, argv, needle of the error line); the files it names are written into ``tmp``."""

    def w(name: str, text: str) -> str:
        (tmp / name).write_text(text)
        return str(tmp / name)

    def wb(name: str, data: bytes) -> str:
        (tmp / name).write_bytes(data)
        return str(tmp / name)

    from perfsim.paths import data_dir

    hw_ok = (data_dir("hardware") / "gb300.yaml").read_text()
    fifo = tmp / "fifo.yaml"
    os.mkfifo(fifo)
    fifo_json = tmp / "fifo.json"
    os.mkfifo(fifo_json)
    huge = tmp / "huge.json"
    with open(huge, "wb") as fh:
        fh.truncate(65 * 2**20)  # sparse: no disk used
    sub = tmp / "folder"
    sub.mkdir()
    bench_ok = dict(BENCH_OK)
    nan_bench = {**bench_ok, "mean_ttft_ms": float("nan")}
    cases = [
        # malformed
        (
            "malformed",
            "hw-yaml-syntax",
            ["show", "hw", w("bad.yaml", "name: [gb300\n")],
            "not valid YAML (expected ',' or ']', but got '<stream end>' at line 2, column 1)",
        ),
        (
            "malformed",
            "hw-yaml-list",
            ["predict", "--hw", w("list.yaml", "- 1\n- 2\n")],
            "expected a mapping (key: value) at the top level",
        ),
        (
            "malformed",
            "hw-yaml-empty",
            ["predict", "--hw", w("empty.yaml", "")],
            "expected a mapping (key: value) at the top level",
        ),
        (
            "malformed",
            "model-json-syntax",
            ["predict", "--model", w("config.json", "{bad json")],
            "config.json: not valid JSON",
        ),
        (
            "malformed",
            "model-json-array",
            ["show", "model", w("arr.json", "[1, 2]")],
            "expected a JSON object at the top level",
        ),
        (
            "malformed",
            "bench-json-syntax",
            ["validate", w("run.json", '{"completed": 3,')],
            "run.json: not a bench-serve JSON file",
        ),
        (
            "malformed",
            "bench-json-no-metrics",
            ["validate", w("run2.json", '{"hello": 1}')],
            "not a vllm bench serve --save-result file (no 'completed' key)",
        ),
        (
            "malformed",
            "csv-ragged",
            ["validate", w("m.csv", 'a,b\n1,2,3\n"unclosed\n')],
            "m.csv: missing columns group, hardware",
        ),
        ("malformed", "csv-empty", ["validate", w("e.csv", "")], "e.csv: missing columns"),
        (
            "malformed",
            "calibration-yaml-syntax",
            ["predict", "--calibration", w("cal.yaml", "params: {a: [\n")],
            "cal.yaml: not valid YAML",
        ),
        (
            "malformed",
            "calibration-yaml-params-str",
            ["predict", "--calibration", w("cal2.yaml", "params: hello\n")],
            "field 'params': Input should be a valid dictionary",
        ),
        (
            "malformed",
            "grid-yaml-syntax",
            ["sweep", "--grid", w("g.yaml", "grid: {a: [1,\n"), "--out", str(tmp / "o.csv")],
            "g.yaml: not valid YAML",
        ),
        (
            "malformed",
            "setup-yaml-syntax",
            ["validate", "--setup", w("s.yaml", "hw: [\n"), w("run3.json", json.dumps(bench_ok))],
            "s.yaml: not valid YAML",
        ),
        (
            "malformed",
            "binary-hw",
            ["predict", "--hw", wb("bin.yaml", b"\xff\xfe\x00\x01" * 100)],
            "bin.yaml: not a text file",
        ),
        (
            "malformed",
            "binary-bench",
            ["validate", wb("binary.json", b"\x89PNG\r\n\x1a\n\x00\x00")],
            "binary.json: not a text file",
        ),
        (
            "malformed",
            "speculative-config-json",
            ["predict", "--speculative-config", "{method: mtp"],
            "--speculative-config must be a JSON object",
        ),
        (
            "malformed",
            "eplb-config-json",
            ["predict", "--enable-eplb", "--eplb-config", "[1,2"],
            "--eplb-config must be a JSON object",
        ),
        (
            "malformed",
            "metadata-no-equals",
            ["predict", "--metadata", "hw"],
            "--metadata 'hw': use KEY=VALUE",
        ),
        (
            "malformed",
            "goodput-bad",
            ["predict", "--goodput", "ttft=5"],
            "--goodput 'ttft=5': expected KEY:VALUE",
        ),
        # huge / nested
        ("huge", "hw-65MiB", ["predict", "--hw", str(huge)], "is 65 MiB; perfsim reads files up to 64 MiB"),
        ("huge", "bench-65MiB", ["validate", str(huge)], "is 65 MiB; perfsim reads files up to 64 MiB"),
        (
            "huge",
            "json-deep",
            ["validate", w("deepjson.json", "[" * 100000 + "]" * 100000)],
            "deepjson.json: not a bench-serve JSON file (nested too deeply",
        ),
        (
            "huge",
            "yaml-deep-grid",
            [
                "sweep",
                "--grid",
                w("deep.yaml", "grid: {label: " + "[" * 60 + "1" + "]" * 60 + "}\n"),
                "--out",
                str(tmp / "o2.csv"),
            ],
            "YAML nested deeper than 32 levels",
        ),
        (
            "huge",
            "yaml-alias-bomb-label",
            [
                "sweep",
                "--grid",
                w(
                    "bomb.yaml",
                    "description:\n  a: &a [x,x,x,x,x,x,x,x,x]\n  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\nbase: {label: *i}\ngrid: {seed: [1]}\n",
                ),
                "--out",
                str(tmp / "o3.csv"),
            ],
            "more than 1,000,000 values once its aliases are expanded",
        ),
        (
            "huge",
            "grid-million",
            [
                "sweep",
                "--grid",
                w(
                    "million.yaml",
                    "grid:\n  seed: ["
                    + ",".join(map(str, range(1001)))
                    + "]\n  max_concurrency: ["
                    + ",".join(map(str, range(1, 1001)))
                    + "]\n",
                ),
                "--out",
                str(tmp / "o4.csv"),
            ],
            "the grid has 1,001,000 points; at most 1,000,000",
        ),
        (
            "huge",
            "grid-large-unconfirmed",
            [
                "sweep",
                "--grid",
                w(
                    "large.yaml",
                    "grid:\n  seed: ["
                    + ",".join(map(str, range(100)))
                    + "]\n  max_concurrency: ["
                    + ",".join(map(str, range(1, 101)))
                    + "]\n",
                ),
                "--out",
                str(tmp / "o5.csv"),
            ],
            "the grid has 10,000 points (more than 5,000): add --yes",
        ),
        (
            "huge",
            "prompts-1e11",
            ["predict", "--num-prompts", "100000000000"],
            "--num-prompts: Input should be less than or equal to 1000000",
        ),
        (
            "huge",
            "many-metadata-long",
            ["predict", "--random-input-len", "9" * 5000],
            "argument --random-input-len/--input-len: invalid int value",
        ),
        # non-regular
        ("non-regular", "fifo-hw", ["predict", "--hw", str(fifo)], "fifo.yaml: is not a regular file"),
        (
            "non-regular",
            "fifo-bench",
            ["validate", str(fifo)],
            "expected a .csv measurement table or a bench-serve .json result",
        ),
        ("non-regular", "fifo-bench-json", ["validate", str(fifo_json)], "is not a regular file"),
        (
            "non-regular",
            "fifo-grid",
            ["sweep", "--grid", str(fifo), "--out", str(tmp / "o6.csv")],
            "fifo.yaml: is not a regular file",
        ),
        ("non-regular", "dir-hw", ["predict", "--hw", str(sub)], "folder: is a folder, expected a file"),
        (
            "non-regular",
            "dir-bench",
            ["validate", str(sub)],
            "no .csv measurement tables or .json bench-serve results in this folder",
        ),
        ("non-regular", "dev-zero-hw", ["predict", "--hw", "/dev/zero"], "/dev/zero: is not a regular file"),
        (
            "non-regular",
            "dev-zero-calibration",
            ["predict", "--calibration", "/dev/zero"],
            "/dev/zero: is not a regular file",
        ),
        ("non-regular", "stdin-dash-bench", ["validate", "-"], "-: file not found"),
        # absurd numbers
        (
            "absurd",
            "seed-negative",
            ["predict", "--seed", "-1"],
            "--seed: Input should be greater than or equal to 0",
        ),
        (
            "absurd",
            "len-1e20",
            ["predict", "--random-input-len", "100000000000000000000"],
            "--random-input-len: Input should be less than or equal to 100000000",
        ),
        (
            "absurd",
            "prompts-zero",
            ["predict", "--num-prompts", "0"],
            "--num-prompts: Input should be greater than or equal to 1",
        ),
        (
            "absurd",
            "rate-negative",
            ["predict", "--request-rate", "-1"],
            "--request-rate: Input should be greater than 0",
        ),
        (
            "absurd",
            "rate-nan",
            ["predict", "--request-rate", "nan"],
            "--request-rate: Input should be greater than 0",
        ),
        (
            "absurd",
            "concurrency-zero",
            ["predict", "--max-concurrency", "0"],
            "--max-concurrency: Input should be greater than or equal to 1",
        ),
        (
            "absurd",
            "gpu-util-1.5",
            ["predict", "--gpu-memory-utilization", "1.5"],
            "--gpu-memory-utilization: Input should be less than or equal to 1",
        ),
        (
            "absurd",
            "tp-3",
            ["predict", "-tp", "3"],
            "tensor parallel size 3 does not divide the 128 attention heads",
        ),
        ("absurd", "tp-huge", ["predict", "-tp", "1000000"], "tensor parallel size 1000000 does not divide"),
        (
            "absurd",
            "range-ratio-2",
            ["predict", "--random-range-ratio", "2"],
            "--random-range-ratio: Input should be less than 1",
        ),
        (
            "absurd",
            "burstiness-0",
            ["predict", "--burstiness", "0"],
            "--burstiness: Input should be greater than 0",
        ),
        (
            "absurd",
            "seed-band-0",
            ["predict", "--seed-band", "0"],
            "--seed-band 0: the number of seeds must be 1 to 64",
        ),
        (
            "absurd",
            "seed-band-huge",
            ["predict", "--seed-band", "100000", "--num-prompts", "5"],
            "--seed-band 100000: the number of seeds must be 1 to 64",
        ),
        (
            "absurd",
            "workers-0",
            ["sweep", "--grid", "examples/grid.yaml", "--out", str(tmp / "o7.csv"), "--workers", "0"],
            "--workers must be >= 1",
        ),
        (
            "absurd",
            "hw-bool-value",
            [
                "predict",
                "--hw",
                w("hwbool.yaml", re.sub(r"\{value: [0-9.e]+", "{value: true", hw_ok, count=1)),
            ],
            "field 'peak_dense.nvfp4.value': must be a number, got True",
        ),
        (
            "absurd",
            "hw-cc-banana",
            [
                "predict",
                "--hw",
                w(
                    "hwcc.yaml",
                    re.sub(r"compute_capability:.*", "compute_capability: banana", hw_ok, count=1),
                ),
            ],
            "compute_capability: expected MAJOR.MINOR such as '10.0', got 'banana'",
        ),
        (
            "absurd",
            "bench-nan",
            ["validate", w("nan.json", json.dumps(nan_bench))],
            "'mean_ttft_ms' is nan, expected a finite number",
        ),
        (
            "absurd",
            "max-model-len-neg",
            ["predict", "--max-model-len", "-5"],
            "--max-model-len: Input should be greater than or equal to 16",
        ),
        (
            "absurd",
            "num-spec-tokens-huge",
            ["predict", "--speculative-config", '{"method": "mtp", "num_speculative_tokens": 1000}'],
            "num_speculative_tokens, an integer from 1 to 8",
        ),
        (
            "absurd",
            "hw-scale-negative",
            [
                "sweep",
                "--grid",
                w("neg.yaml", "grid: {hw_scale.hbm_bandwidth: [-1]}\n"),
                "--out",
                str(tmp / "o8.csv"),
            ],
            "factor -1 must be a finite number > 0",
        ),
        # typos
        (
            "typo",
            "flag-typo",
            ["predict", "--max-num-seq", "3"],
            "unrecognized flag --max-num-seq (did you mean --max-num-seqs?)",
        ),
        (
            "typo",
            "flag-abbrev",
            ["predict", "--max-num", "3"],
            "unrecognized flag --max-num (did you mean --max-num-seqs?)",
        ),
        (
            "typo",
            "hw-name",
            ["predict", "--hw", "gb3000"],
            "unknown hardware 'gb3000'. Known hardware names: b200",
        ),
        (
            "typo",
            "model-name",
            ["predict", "--model", "deepseek-v4"],
            "unknown model 'deepseek-v4'. Known model names:",
        ),
        (
            "typo",
            "precision",
            ["predict", "--precision", "fp3"],
            "argument --precision: invalid choice: 'fp3'",
        ),
        (
            "typo",
            "calibration-name",
            ["predict", "--calibration", "vllm-0.14.2"],
            "unknown calibration 'vllm-0.14.2'",
        ),
        (
            "typo",
            "grid-key",
            [
                "sweep",
                "--grid",
                w("typo.yaml", "grid: {max_concurency: [1, 2]}\n"),
                "--out",
                str(tmp / "o9.csv"),
            ],
            "unknown sweep key 'max_concurency'",
        ),
        (
            "typo",
            "hw-field",
            ["predict", "--hw", w("hwtypo.yaml", hw_ok.replace("hbm_bandwidth:", "hbm_bandwith:", 1))],
            "field 'hbm_bandwith': unknown field (typo?)",
        ),
        (
            "malformed",
            "set-value-yaml",
            ["validate", "--set", "hw=[", w("run5.json", json.dumps(bench_ok))],
            "--set 'hw=[': the value is not valid YAML",
        ),
        (
            "typo",
            "set-key",
            ["validate", "--set", "hw_name=gb300", w("run4.json", json.dumps(bench_ok))],
            "unknown setting 'hw_name'",
        ),
        ("typo", "subcommand", ["predcit"], "invalid choice: 'predcit'"),
        (
            "typo",
            "kv-dtype",
            ["predict", "--kv-cache-dtype", "fp9"],
            "argument --kv-cache-dtype: invalid choice: 'fp9'",
        ),
        (
            "typo",
            "all2all",
            ["predict", "--all2all-backend", "deepep"],
            "argument --all2all-backend: invalid choice: 'deepep'",
        ),
        # bad paths
        (
            "bad-path",
            "hw-missing",
            ["predict", "--hw", str(tmp / "nope" / "hw.yaml")],
            "nope/hw.yaml: file not found",
        ),
        (
            "bad-path",
            "bench-missing",
            ["validate", str(tmp / "missing.json")],
            "missing.json: file not found",
        ),
        (
            "bad-path",
            "json-out-missing-dir",
            ["predict", "--json", str(tmp / "nodir" / "out.json")],
            "nodir does not exist",
        ),
        (
            "bad-path",
            "json-out-is-dir",
            ["predict", "--json", str(sub)],
            "folder: is a folder; give a file name",
        ),
        (
            "bad-path",
            "json-out-proc",
            ["predict", "--json", "/proc/perfsim.json"],
            "/proc/perfsim.json: cannot be written there",
        ),
        (
            "bad-path",
            "result-dir-is-file",
            ["predict", "--save-result", "--result-dir", w("afile.txt", "x"), "--random-input-len", "100"],
            "afile.txt: exists and is not a folder",
        ),
        (
            "bad-path",
            "sweep-out-missing-dir",
            ["sweep", "--grid", "examples/grid.yaml", "--out", str(tmp / "nodir" / "o.csv")],
            "nodir does not exist",
        ),
        (
            "bad-path",
            "sweep-out-not-csv",
            ["sweep", "--grid", "examples/grid.yaml", "--out", str(tmp / "o.txt")],
            "unsupported file type '.txt'; allowed: .csv",
        ),
        (
            "bad-path",
            "plot-is-file",
            [
                "sweep",
                "--grid",
                "examples/grid.yaml",
                "--out",
                str(tmp / "o10.csv"),
                "--plot",
                w("plotfile", "x"),
            ],
            "plotfile: exists and is not a folder",
        ),
        (
            "bad-path",
            "calibrate-out-missing-dir",
            ["calibrate", "--out", str(tmp / "nodir" / "p.yaml"), "--no-cv"],
            "nodir does not exist",
        ),
        (
            "bad-path",
            "validate-plot-bad-ext",
            ["validate", "--plot", str(tmp / "p.bmp")],
            "unsupported file type '.bmp'",
        ),
        # overwrites
        (
            "overwrite",
            "json-over-hw",
            ["predict", "--hw", w("mine.yaml", hw_ok), "--json", str(tmp / "mine.yaml")],
            "mine.yaml: is also an input of this command",
        ),
        (
            "overwrite",
            "json-over-calibration",
            [
                "predict",
                "--calibration",
                w("cal3.yaml", (data_dir("calibrations") / "vllm-0.14.1.yaml").read_text()),
                "--json",
                str(tmp / "cal3.yaml"),
            ],
            "cal3.yaml: is also an input of this command",
        ),
        (
            "overwrite",
            "sweep-out-over-input-csv",
            [
                "sweep",
                "--grid",
                w("g2.yaml", "grid: {max_concurrency: [1]}\n"),
                "--out",
                str(tmp / "g2.yaml"),
            ],
            "unsupported file type '.yaml'; allowed: .csv",
        ),
        (
            "overwrite",
            "result-filename-over-hw",
            [
                "predict",
                "--hw",
                w("mine2.yaml", hw_ok),
                "--save-result",
                "--result-dir",
                str(tmp),
                "--result-filename",
                "mine2.yaml",
                "--random-input-len",
                "100",
                "--num-prompts",
                "2",
            ],
            "mine2.yaml: is also an input of this command",
        ),
        (
            "overwrite",
            "calibrate-out-over-setup",
            ["calibrate", "--setup", w("s2.yaml", "hw: gb300\n"), "--out", str(tmp / "s2.yaml"), "--no-cv"],
            "s2.yaml: is also an input of this command",
        ),
        (
            "overwrite",
            "pasted-config",
            [
                "predict",
                "--json",
                w("serve.yaml", "max-num-seqs: 8\n"),
                "--",
                "vllm",
                "serve",
                "dsv32",
                "--config",
                str(tmp / "serve.yaml"),
            ],
            "serve.yaml: is also an input of this command",
        ),
        (
            "malformed",
            "plan-pd-ratio",
            ["plan", "--pd-ratios", "1-2"],
            "expected PREFILL:DECODE instance counts",
        ),
        (
            "absurd",
            "plan-concurrency-zero",
            ["plan", "--max-concurrency", "16", "0"],
            "--max-concurrency 0 (value 2): Input should be greater than or equal to 1",
        ),
        ("absurd", "plan-tp-3", ["plan", "-tp", "3"], "no deployment of the search space can run"),
        ("typo", "plan-executor", ["plan", "--executor", "spark"], "allowed: local, dask, dask://HOST:PORT"),
        (
            "huge",
            "plan-large-unconfirmed",
            ["plan", "-tp", "2", "4", "--max-concurrency", *map(str, range(1, 2600))],
            "add --yes to run it",
        ),
        (
            "bad-path",
            "plan-same-outputs",
            ["plan", "--json", str(tmp / "p.json"), "--csv", str(tmp / "p.json")],
            "must name different files",
        ),
        (
            "overwrite",
            "plan-json-over-hw",
            ["plan", "--hw", w("mine3.yaml", hw_ok), "--json", str(tmp / "mine3.yaml")],
            "mine3.yaml: is also an input of this command",
        ),
    ]
    return {name: (category, argv, needle) for category, name, argv, needle in cases}


CASE_NAMES = [
    "plan-pd-ratio",
    "plan-concurrency-zero",
    "plan-tp-3",
    "plan-executor",
    "plan-large-unconfirmed",
    "plan-same-outputs",
    "plan-json-over-hw",
    "hw-yaml-syntax",
    "hw-yaml-list",
    "hw-yaml-empty",
    "model-json-syntax",
    "model-json-array",
    "bench-json-syntax",
    "bench-json-no-metrics",
    "csv-ragged",
    "csv-empty",
    "calibration-yaml-syntax",
    "calibration-yaml-params-str",
    "grid-yaml-syntax",
    "setup-yaml-syntax",
    "binary-hw",
    "binary-bench",
    "speculative-config-json",
    "eplb-config-json",
    "metadata-no-equals",
    "goodput-bad",
    "set-value-yaml",
    "hw-65MiB",
    "bench-65MiB",
    "json-deep",
    "yaml-deep-grid",
    "yaml-alias-bomb-label",
    "grid-million",
    "grid-large-unconfirmed",
    "prompts-1e11",
    "many-metadata-long",
    "fifo-hw",
    "fifo-bench",
    "fifo-bench-json",
    "fifo-grid",
    "dir-hw",
    "dir-bench",
    "dev-zero-hw",
    "dev-zero-calibration",
    "stdin-dash-bench",
    "seed-negative",
    "len-1e20",
    "prompts-zero",
    "rate-negative",
    "rate-nan",
    "concurrency-zero",
    "gpu-util-1.5",
    "tp-3",
    "tp-huge",
    "range-ratio-2",
    "burstiness-0",
    "seed-band-0",
    "seed-band-huge",
    "workers-0",
    "hw-bool-value",
    "hw-cc-banana",
    "bench-nan",
    "max-model-len-neg",
    "num-spec-tokens-huge",
    "hw-scale-negative",
    "flag-typo",
    "flag-abbrev",
    "hw-name",
    "model-name",
    "precision",
    "calibration-name",
    "grid-key",
    "hw-field",
    "set-key",
    "subcommand",
    "kv-dtype",
    "all2all",
    "hw-missing",
    "bench-missing",
    "json-out-missing-dir",
    "json-out-is-dir",
    "json-out-proc",
    "result-dir-is-file",
    "sweep-out-missing-dir",
    "sweep-out-not-csv",
    "plot-is-file",
    "calibrate-out-missing-dir",
    "validate-plot-bad-ext",
    "json-over-hw",
    "json-over-calibration",
    "sweep-out-over-input-csv",
    "result-filename-over-hw",
    "calibrate-out-over-setup",
    "pasted-config",
]


def run_guarded(argv: list[str]) -> tuple[object, str, str]:
    """(exit code, stdout, stderr) of ``perfsim argv`` in this process, or 'hang' past ``HANG_GUARD_S``."""

    def alarm(*_args: object) -> None:
        raise TimeoutError

    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG_GUARD_S)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code: object = main(argv)
    except TimeoutError:
        code = "hang"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, out.getvalue(), err.getvalue()


def _snapshot(tmp: Path) -> dict[Path, bytes | None]:
    return {
        p: (p.read_bytes() if p.is_file() and p.stat().st_size < 2**20 else None)
        for p in tmp.rglob("*")
        if not p.is_fifo()
    }


def test_the_corpus_is_the_listed_cases_in_every_category(tmp_path):
    cases = corpus(tmp_path)
    assert sorted(cases) == sorted(CASE_NAMES)
    categories = {category for category, _, _ in cases.values()}
    assert categories == {"malformed", "huge", "non-regular", "absurd", "typo", "bad-path", "overwrite"}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_input_is_one_clear_line_and_exit_2(tmp_path, name, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)  # cases name examples/grid.yaml
    _category, argv, needle = corpus(tmp_path)[name]
    before = _snapshot(tmp_path)
    code, out, err = run_guarded(argv)
    assert code == 2, (code, err)
    assert err.startswith("perfsim: error: ") and err.count("\n") == 1, err
    assert needle in err and "internal error" not in err, err
    assert "Serving Benchmark" not in out  # refused before simulating
    after = _snapshot(tmp_path)
    assert sorted(map(str, set(after) - set(before))) == [], "a file was left behind"
    changed = [p.name for p, data in before.items() if data is not None and p.read_bytes() != data]
    assert changed == [], f"inputs changed: {changed}"
