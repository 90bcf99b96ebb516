"""The ``vllm serve`` and ``vllm bench serve`` command lines of a planned deployment."""

from __future__ import annotations

import json
import shlex
from typing import Any

#: deployment settings written as plain vLLM flags (value-taking)
VALUE_FLAGS = {
    "tensor_parallel_size": "-tp",
    "data_parallel_size": "-dp",
    "all2all_backend": "--all2all-backend",
    "max_num_batched_tokens": "--max-num-batched-tokens",
    "max_num_seqs": "--max-num-seqs",
}
#: values that are vLLM's defaults, left out of the command line
DEFAULTS = {"data_parallel_size": (1,), "all2all_backend": ("allgather_reducescatter",)}
#: a NIXL KV connector on both sides (vLLM's P/D examples); perfsim models the transfer, not the connector
KV_TRANSFER = '{"kv_connector": "NixlConnector", "kv_role": "kv_both"}'


def _serve_line(checkpoint: str, quantization: str | None, settings: dict[str, Any]) -> str:
    args = ["vllm", "serve", checkpoint]
    if quantization:
        args += ["--quantization", quantization]
    for key, flag in VALUE_FLAGS.items():
        value = settings.get(key)
        if value is not None and value not in DEFAULTS.get(key, ()):
            args += [flag, str(value)]
    if settings.get("enable_expert_parallel"):
        args.append("--enable-expert-parallel")
    if settings.get("enable_dbo"):
        args.append("--enable-dbo")
    if settings.get("enable_eplb"):
        args += ["--enable-eplb", "--eplb-config", json.dumps(settings["eplb_config"])]
    if settings.get("num_speculative_tokens"):
        spec = {"method": "mtp", "num_speculative_tokens": settings["num_speculative_tokens"]}
        args += ["--speculative-config", json.dumps(spec)]
    return shlex.join(args)


def serve_commands(checkpoint: str, quantization: str | None, settings: dict[str, Any]) -> list[str]:
    """One ``vllm serve`` line per kind of instance (replicas and P/D roles say how many to start); a P/D
    decode instance of another shape gets its own TP, DP and all-to-all backend."""
    line = _serve_line(checkpoint, quantization, settings)
    prefill, decode = settings.get("num_prefill_instances", 0), settings.get("num_decode_instances", 0)
    if prefill:
        decode_settings = {**settings}
        for own, target in (
            ("decode_tensor_parallel_size", "tensor_parallel_size"),
            ("decode_data_parallel_size", "data_parallel_size"),
            ("decode_all2all_backend", "all2all_backend"),
        ):
            if settings.get(own) is not None:
                decode_settings[target] = settings[own]
        decode_line = _serve_line(checkpoint, quantization, decode_settings)
        kv = f" --kv-transfer-config {shlex.quote(KV_TRANSFER)}"
        return [
            f"{line}{kv}  # prefill instance, x{prefill}",
            f"{decode_line}{kv}  # decode instance, x{decode} (behind a P/D proxy)",
        ]
    replicas = settings.get("num_instances", 1)
    return [line if replicas == 1 else f"{line}  # x{replicas} replicas behind a router"]


def bench_command(checkpoint: str, bench: dict[str, Any], goodput: list[str] | None) -> str:
    """The ``vllm bench serve`` line of the planned workload."""
    args = ["vllm", "bench", "serve", "--model", checkpoint, "--dataset-name", "random"]
    for key in (
        "random_input_len",
        "random_output_len",
        "random_range_ratio",
        "num_prompts",
        "request_rate",
        "max_concurrency",
    ):
        if bench.get(key) is not None and not (key == "random_range_ratio" and bench[key] == 0):
            args += [
                "--" + key.replace("_", "-"),
                f"{bench[key]:g}" if key == "request_rate" else str(bench[key]),
            ]
    args.append("--ignore-eos")
    if goodput:
        args += ["--goodput", *goodput]
    return shlex.join(args)
