"""One measured value and the scenario that produced it, and the helpers every measurement reader shares.

A ``Measurement`` maps to one ``perfsim predict`` scenario (model, GPU, precision, deployment, bench flags)
and one metric of its result, with the scope the value was reported in (per GPU, per deployment, per
request). Settings a source does not state are filled only by explicit, printed assumptions; a row whose
scenario stays unknown (e.g. no concurrency) is kept with the reason and never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from perfsim.calibration.setting_unknown import SettingUnknown
from perfsim.errors import SpecError
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import VLLM_VERSION, Deployment
from perfsim.specs.loading import validation_error_to_spec_error

METRIC_CLASS = {
    "total_token_throughput": "throughput",
    "output_throughput": "throughput",
    "request_throughput": "throughput",
    "max_output_tokens_per_s": "throughput",
    "kernel_latency_us": "kernel",
}
#: latency metrics as `vllm bench serve --save-result` names them: mean/median/std/pNN of ttft, tpot, itl, e2el
LATENCY_METRIC = re.compile(r"(mean|median|std|p(\d+(?:\.\d+)?))_(ttft|tpot|itl|e2el)_ms")
#: percentiles every CSV scenario asks its simulation for (a row's own pNN is added when it is not here)
CSV_PERCENTILES = ("50", "90", "95", "99")


def metric_class(metric: str) -> str | None:
    """'throughput', 'ttft', 'tpot', 'itl' or 'e2el' for a bench-serve metric name; None when unknown."""
    if metric in METRIC_CLASS:
        return METRIC_CLASS[metric]
    m = LATENCY_METRIC.fullmatch(metric)
    return m[3] if m else None


SCOPES = ("per_gpu", "deployment", "request", "kernel")
#: what a row's scenario is: a simulated bench-serve run, the steady state of a decode instance whose batch
#: fills its KV cache, or one operator of one layer on one GPU
KINDS = ("serving", "decode_steady_state", "kernel")


@dataclass(frozen=True)
class Measurement:
    """One measured value and the scenario that produced it."""

    group: str
    model: str
    hw: str
    precision: str
    deployment: dict[str, Any]
    bench: dict[str, Any] | None  # None when the scenario is not fully known
    metric: str
    value: float
    scope: str
    source: str
    note: str = ""
    assumptions: tuple[str, ...] = ()
    unknown: str | None = None  # why this row cannot be predicted
    kind: str = "serving"
    #: module classes whose weights the measured checkpoint stores in another dtype than perfsim's recipe
    module_dtypes: tuple[tuple[str, str], ...] = ()
    #: kernel rows: the operator (``mla_prefill_attention``, ``moe_routed_experts``) and its batch
    kernel_op: str = ""
    #: the vLLM version that served the run (profiles are kept per engine version)
    engine_version: str = VLLM_VERSION
    #: a deployment setting the source does not state, fitted per calibration (its default otherwise)
    fitted_setting: SettingUnknown | None = None

    @property
    def tp(self) -> str:
        """The run's tensor-parallel size as a fold key ('tp2')."""
        return f"tp{self.deployment.get('tensor_parallel_size') or 1}"

    @property
    def metric_class(self) -> str:
        """throughput, ttft, tpot, itl or e2el."""
        return metric_class(self.metric) or "unknown"

    @property
    def label(self) -> str:
        """Short description for tables."""
        b = self.bench or {}
        conc = b.get("max_concurrency")
        return (
            f"{self.group} c={conc if conc else '?'} {self.metric}"
            f"{' /GPU' if self.scope == 'per_gpu' else ''}"
        )

    def scenario_key(self) -> tuple:
        """Rows with the same key share one simulation."""
        return (
            self.kind,
            self.kernel_op,
            self.engine_version,
            self.model,
            self.hw,
            self.precision,
            self.module_dtypes,
            tuple(sorted(self.deployment.items())),
            tuple(sorted((self.bench or {}).items())),
            self.fitted_setting.name if self.fitted_setting else "",
        )

    def predicted(self, result: dict[str, Any]) -> float:
        """The value this row measured, read from a prediction's result dict in the same scope."""
        value = float(result[self.metric])
        return value / result["num_gpus"] if self.scope == "per_gpu" else value

    @property
    def is_serving(self) -> bool:
        """A row of a served workload (bench serve or a decode instance), not a kernel microbenchmark."""
        return self.kind != "kernel"


def parse_parallel(text: str) -> dict[str, Any]:
    """'tp2', 'dp2+ep', 'tp4+mtp1', '1p1d-tp2' -> Deployment fields."""
    out: dict[str, Any] = {}
    for part in re.split(r"[+\-_ ]", text.strip().lower()):
        if not part:
            continue
        if m := re.fullmatch(r"tp(\d+)", part):
            out["tensor_parallel_size"] = int(m[1])
        elif m := re.fullmatch(r"dp(\d+)", part):
            out["data_parallel_size"] = int(m[1])
        elif part == "ep":
            out["enable_expert_parallel"] = True
        elif m := re.fullmatch(r"mtp(\d+)", part):
            out["num_speculative_tokens"] = int(m[1])
        elif m := re.fullmatch(r"(\d+)p(\d+)d", part):
            out["num_prefill_instances"], out["num_decode_instances"] = int(m[1]), int(m[2])
        else:
            raise SpecError(
                f"parallel '{text}': unknown part '{part}'; use tpN, dpN, ep, mtpN, NpMd joined by '+'",
                field="parallel",
            )
    if out.get("data_parallel_size") and "tensor_parallel_size" not in out:
        out["tensor_parallel_size"] = 1
    return out


def normalize_setup(setup: dict[str, Any], source: str) -> dict[str, Any]:
    """Setup keys in snake_case (``tensor-parallel-size`` works too); unknown keys are refused."""
    allowed = {"model", "hw", "precision", "group", *Deployment.model_fields, *BenchConfig.model_fields}
    out = {}
    for key, value in setup.items():
        k = str(key).strip().lstrip("-").replace("-", "_")
        if k not in allowed:
            raise SpecError(
                f"unknown setting '{key}'; use model, hw, precision, group, a vllm serve flag or a bench "
                "serve flag (e.g. tensor_parallel_size, max_concurrency)",
                source=source,
                field=str(key),
            )
        out[k] = value
    return out


def check_scenario(dep: dict[str, Any], bench: dict[str, Any], source: str) -> None:
    """Validate a row's deployment and bench settings now, naming the file."""
    for cls, values in ((Deployment, dep), (BenchConfig, bench)):
        try:
            cls(**values)
        except ValidationError as exc:
            raise validation_error_to_spec_error(exc, source) from None


def apply_overrides(dep: dict, bench: dict, assume: dict[str, Any], notes: list[str]) -> None:
    for key, value in assume.items():
        if key == "concurrency":
            key = "max_concurrency"
        if key in BenchConfig.model_fields:
            if bench.get(key) in (None, ""):
                bench[key] = value
                notes.append(f"{key}={value}: assumed on the command line")
        elif key in Deployment.model_fields:
            dep[key] = value
            notes.append(f"{key}={value}: set on the command line")
        else:
            raise SpecError(f"--assume {key}: not a vllm serve or bench serve setting")


#: precision names measurement files use for perfsim's --precision values
PRECISION_ALIASES = {
    "nvfp4": "fp4",
    "fp4": "fp4",
    "fp8": "fp8",
    "fp8_e4m3": "fp8",
    "bf16": "bf16",
    "bfloat16": "bf16",
}


def parallel_kind(*, dp: int, expert_parallel: bool, disaggregated: bool) -> str:
    """The parallelism class calibration rows and error bands are grouped by: pd, dp+ep, dp or tp."""
    if disaggregated:
        return "pd"
    return "dp+ep" if expert_parallel else ("dp" if dp > 1 else "tp")
