"""Quantization recipes: which weight dtype each module class has, read from the checkpoint.

Three sources: a ModelOpt ``hf_quant_config.json`` (``quant_algo`` NVFP4 / FP8 with ``exclude_modules``), the
``quantization_config`` of a ``config.json`` (``quant_method`` mxfp4 for gpt-oss, fp8 blocks for DeepSeek, Kimi-K2
and Qwen3-FP8, with ``modules_to_not_convert`` / ``ignored_layers``), or a named native recipe (``native-fp8``,
``bf16``). Exclusion patterns are matched against each model family's Hugging Face module names.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from perfsim.errors import SpecError
from perfsim.specs.model.architecture import ModelArchitecture

#: --precision values: NVFP4, MXFP4 (gpt-oss), FP8, BF16 checkpoints; ``auto`` takes the checkpoint's own
PRECISION_CHOICES = ("fp4", "mxfp4", "fp8", "bf16")

#: module classes whose dtype a recipe decides
MODULE_CLASSES = (
    "qkv",
    "q_a",
    "kv_a",
    "q_b",
    "kv_b",
    "o_proj",
    "indexer",
    "indexer_weights_proj",
    "dense_mlp",
    "shared_expert",
    "routed_experts",
    "router",
    "embedding",
    "lm_head",
)


@dataclass(frozen=True)
class QuantRecipe:
    """Weight dtype per module class, for the main layers and for the MTP layer, plus the KV default.

    ``kv_cache_quant`` is what the checkpoint asks for (``'fp8'`` or ``None``); vLLM's ``auto``
    resolution from it lives in ``perfsim.specs.deployment``.
    """

    precision: str
    checkpoint: str
    source: str
    module_dtypes: dict[str, str]
    mtp_dtypes: dict[str, str]
    kv_cache_quant: str | None
    note: str = ""

    def dtype(self, module_class: str, *, mtp: bool = False) -> str:
        """Weight dtype of a module class (main layers, or the MTP layer)."""
        return (self.mtp_dtypes if mtp else self.module_dtypes)[module_class]


def _representative_names(arch: ModelArchitecture, layer: int) -> dict[str, str]:
    """HF module names of one layer, for matching exclude patterns (per model family's naming)."""
    p = f"model.layers.{layer}"
    moe = layer >= arch.num_layers or arch.layer_kinds[layer] == "moe"
    if arch.gqa is not None:
        experts, router = {
            "mixtral": (f"{p}.block_sparse_moe.experts.0.w1", f"{p}.block_sparse_moe.gate"),
            "gpt_oss": (f"{p}.mlp.experts", f"{p}.mlp.router"),
        }.get(arch.model_type, (f"{p}.mlp.experts.0.gate_proj", f"{p}.mlp.gate"))
        return {
            "qkv": f"{p}.self_attn.q_proj",
            "o_proj": f"{p}.self_attn.o_proj",
            "dense_mlp": f"{p}.mlp.gate_proj" if not moe else "",
            "routed_experts": experts if moe else "",
            "router": router if moe else "",
        }
    return {
        "q_a": f"{p}.self_attn.q_a_proj",
        "kv_a": f"{p}.self_attn.kv_a_proj_with_mqa",
        "q_b": f"{p}.self_attn.q_b_proj",
        "kv_b": f"{p}.self_attn.kv_b_proj",
        "o_proj": f"{p}.self_attn.o_proj",
        "indexer": f"{p}.self_attn.indexer.wq_b",
        "indexer_weights_proj": f"{p}.self_attn.indexer.weights_proj",
        "dense_mlp": f"{p}.mlp.gate_proj" if not moe else "",
        "shared_expert": f"{p}.mlp.shared_experts.gate_proj" if moe else "",
        "routed_experts": f"{p}.mlp.experts.0.gate_proj" if moe else "",
    }


_NEVER_QUANTIZED = {"router": "bf16", "embedding": "bf16"}  # not quantized Linear modules in vLLM


def _matcher(patterns: list[str]):
    """A test of module names against exclusion patterns (shell-style; a pattern also covers its submodules)."""
    if not patterns:
        return lambda name: False
    regex = re.compile("|".join(fnmatch.translate(p) for pat in patterns for p in (pat, f"{pat}.*")))
    return lambda name: bool(regex.match(name))


def _classify(
    arch: ModelArchitecture,
    layers: range,
    dtype: str,
    excluded,
    *,
    quantized: tuple[str, ...] | None = None,
    lm_head: bool = True,
) -> dict[str, str]:
    """Module class -> dtype by majority over ``layers``: ``dtype`` unless excluded (or not in ``quantized``);
    ``lm_head``: whether the method can quantize the output head (vLLM's FP8 and MXFP4 methods do not)."""
    votes: dict[str, Counter] = {c: Counter() for c in MODULE_CLASSES}
    for layer in layers:
        for cls_name, module in _representative_names(arch, layer).items():
            if module:
                keep = excluded(module) or (quantized is not None and cls_name not in quantized)
                votes[cls_name]["bf16" if keep else dtype] += 1
    out = {}
    for cls_name in MODULE_CLASSES:
        if cls_name in _NEVER_QUANTIZED:
            out[cls_name] = _NEVER_QUANTIZED[cls_name]
        elif cls_name == "lm_head":
            out[cls_name] = "bf16" if excluded("lm_head") or not lm_head else dtype
        elif votes[cls_name]:
            out[cls_name] = votes[cls_name].most_common(1)[0][0]
        else:
            out[cls_name] = "bf16"
    return out


def _mtp_layers(arch: ModelArchitecture) -> range:
    return range(arch.num_layers, arch.num_layers + max(arch.num_mtp_layers, 1))


def recipe_from_modelopt(
    arch: ModelArchitecture, quant: dict, path: Path, checkpoint: str, note: str
) -> QuantRecipe:
    """Build a recipe from a ModelOpt ``hf_quant_config.json`` (quant_algo + exclude_modules)."""
    try:
        q = quant["quantization"]
        algo = q["quant_algo"]
        excludes = list(q.get("exclude_modules") or [])
        kv_algo = q.get("kv_cache_quant_algo")
    except (KeyError, TypeError):
        raise SpecError(
            "expected {'quantization': {'quant_algo': ..., 'exclude_modules': [...]}}",
            source=str(path),
            field="quantization",
        ) from None
    algo_dtype = {"NVFP4": "nvfp4", "FP8": "fp8"}.get(str(algo).upper())
    if algo_dtype is None:
        raise SpecError(
            f"quant_algo '{algo}' is not supported; allowed: NVFP4, FP8",
            source=str(path),
            field="quantization.quant_algo",
        )
    excluded = _matcher(excludes)
    kv = {"FP8": "fp8"}.get(str(kv_algo).upper()) if kv_algo else None
    return QuantRecipe(
        precision="fp4" if algo_dtype == "nvfp4" else "fp8",
        checkpoint=checkpoint,
        source=str(path),
        module_dtypes=_classify(arch, range(arch.num_layers), algo_dtype, excluded),
        mtp_dtypes=_classify(arch, _mtp_layers(arch), algo_dtype, excluded),
        kv_cache_quant=kv,
        note=note,
    )


#: ``quantization_config.quant_method`` of a config.json -> (weight dtype, precision, the module classes the
#: method quantizes; None: every linear module)
HF_QUANT_METHODS: dict[str, tuple[str, str, tuple[str, ...] | None]] = {
    "mxfp4": (
        "mxfp4",
        "mxfp4",
        ("routed_experts",),
    ),  # transformers' Mxfp4 quantizer replaces the experts only
    "fp8": ("fp8", "fp8", None),
}


def recipe_from_hf_config(
    arch: ModelArchitecture, quant: dict, path: Path, checkpoint: str, note: str
) -> QuantRecipe:
    """Build a recipe from the ``quantization_config`` of a ``config.json`` (quant_method mxfp4 or fp8)."""
    method = str(quant.get("quant_method", "")).lower() if isinstance(quant, dict) else ""
    if method not in HF_QUANT_METHODS:
        raise SpecError(
            f"quantization_config.quant_method {method!r} is not supported; allowed: {', '.join(HF_QUANT_METHODS)}",
            source=str(path),
            field="quantization_config.quant_method",
        )
    dtype, precision, quantized = HF_QUANT_METHODS[method]
    excluded = _matcher(
        [str(m) for m in quant.get("modules_to_not_convert") or quant.get("ignored_layers") or []]
    )
    return QuantRecipe(
        precision=precision,
        checkpoint=checkpoint,
        source=f"{path} (quantization_config)",
        module_dtypes=_classify(
            arch, range(arch.num_layers), dtype, excluded, quantized=quantized, lm_head=False
        ),
        mtp_dtypes=_classify(arch, _mtp_layers(arch), dtype, excluded, quantized=quantized, lm_head=False),
        kv_cache_quant=None,
        note=note,
    )


def native_fp8_recipe(checkpoint: str, note: str) -> QuantRecipe:
    """DeepSeek's own FP8 block-quantized checkpoint: all decoder linears FP8, embed/head/router BF16."""
    dtypes = {c: "fp8" for c in MODULE_CLASSES}
    dtypes.update(router="bf16", embedding="bf16", lm_head="bf16", indexer_weights_proj="bf16")
    return QuantRecipe(
        precision="fp8",
        checkpoint=checkpoint,
        source="native-fp8",
        module_dtypes=dtypes,
        mtp_dtypes=dict(dtypes),
        kv_cache_quant=None,
        note=note,
    )


def bf16_recipe(checkpoint: str, note: str) -> QuantRecipe:
    """Every weight in BF16."""
    dtypes = {c: "bf16" for c in MODULE_CLASSES}
    return QuantRecipe(
        precision="bf16",
        checkpoint=checkpoint,
        source="bf16",
        module_dtypes=dtypes,
        mtp_dtypes=dict(dtypes),
        kv_cache_quant=None,
        note=note,
    )
