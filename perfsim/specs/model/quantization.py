"""Quantization recipes: which weight dtype each module class has, read from the checkpoint (ModelOpt) or native."""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from perfsim.errors import SpecError
from perfsim.specs.model.architecture import ModelArchitecture

PRECISION_CHOICES = ("fp4", "fp8", "bf16")

#: module classes whose dtype a recipe decides
MODULE_CLASSES = (
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
    """HF module names of one layer, for matching ModelOpt exclude patterns."""
    p = f"model.layers.{layer}"
    moe = layer >= arch.num_layers or arch.layer_kinds[layer] == "moe"
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


_NEVER_QUANTIZED = {"router": "bf16", "embedding": "bf16"}  # not nn.Linear modules in ModelOpt


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

    pattern = re.compile("|".join(fnmatch.translate(p) for p in excludes)) if excludes else None

    def excluded(name: str) -> bool:
        return bool(pattern and pattern.match(name))

    def classify(layers: range) -> dict[str, str]:
        votes: dict[str, Counter] = {c: Counter() for c in MODULE_CLASSES}
        for layer in layers:
            for cls_name, module in _representative_names(arch, layer).items():
                if module:
                    votes[cls_name]["bf16" if excluded(module) else algo_dtype] += 1
        out = {}
        for cls_name in MODULE_CLASSES:
            if cls_name in _NEVER_QUANTIZED:
                out[cls_name] = _NEVER_QUANTIZED[cls_name]
            elif cls_name == "lm_head":
                out[cls_name] = "bf16" if excluded("lm_head") else algo_dtype
            elif votes[cls_name]:
                out[cls_name] = votes[cls_name].most_common(1)[0][0]
            else:
                out[cls_name] = "bf16"
        return out

    main = classify(range(arch.num_layers))
    mtp = classify(range(arch.num_layers, arch.num_layers + max(arch.num_mtp_layers, 1)))
    kv = {"FP8": "fp8"}.get(str(kv_algo).upper()) if kv_algo else None
    return QuantRecipe(
        precision="fp4" if algo_dtype == "nvfp4" else "fp8",
        checkpoint=checkpoint,
        source=str(path),
        module_dtypes=main,
        mtp_dtypes=mtp,
        kv_cache_quant=kv,
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
