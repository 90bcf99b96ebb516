"""vLLM's ``--quantization`` (``-q``) against the checkpoint, as vLLM 0.14.1 checks it.

vLLM reads the method from the checkpoint (``config/model.py`` ``_verify_quantization``): a ModelOpt NVFP4
checkpoint is ``modelopt_fp4``, DeepSeek's FP8 blocks and gpt-oss's MXFP4 are ``fp8`` and ``mxfp4``. A
``--quantization`` that differs from the checkpoint's method is refused. An unquantized (BF16) checkpoint with
``-q fp8`` is quantized online to FP8 when loading (per-tensor scales), which perfsim costs as FP8 weights.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from perfsim.errors import SpecError
from perfsim.specs.model.lookup import Model
from perfsim.specs.model.quantization import native_fp8_recipe

#: vLLM 0.14.1's --quantization choices (model_executor/layers/quantization/__init__.py:12-42)
VllmQuantization = Literal[
    "awq",
    "deepspeedfp",
    "fp8",
    "ptpc_fp8",
    "fbgemm_fp8",
    "fp_quant",
    "modelopt",
    "modelopt_fp4",
    "bitblas",
    "gguf",
    "gptq_marlin_24",
    "gptq_marlin",
    "gptq_bitblas",
    "awq_marlin",
    "gptq",
    "compressed-tensors",
    "bitsandbytes",
    "hqq",
    "experts_int8",
    "ipex",
    "quark",
    "moe_wna16",
    "torchao",
    "auto-round",
    "rtn",
    "inc",
    "mxfp4",
    "petit_nvfp4",
    "cpu_awq",
]

#: the method vLLM resolves each of perfsim's recipes to (None: an unquantized checkpoint)
METHOD_OF_PRECISION: dict[str, str | None] = {
    "fp4": "modelopt_fp4",
    "fp8": "fp8",
    "mxfp4": "mxfp4",
    "bf16": None,
}


def apply_quantization_flag(model: Model, quantization: str | None, *, what_if: bool) -> Model:
    """``model`` as vLLM would load it with ``--quantization``; ``SpecError`` where vLLM refuses it.

    ``what_if`` says that ``--precision`` chose the recipe (then ``--quantization`` must name the same one).
    """
    if quantization is None:
        return model
    method = METHOD_OF_PRECISION[model.recipe.precision]
    if quantization == method:
        return model
    checkpoint = model.recipe.checkpoint.split(" ")[0]
    if method is None and quantization == "fp8":
        recipe = native_fp8_recipe(
            f"{checkpoint} (quantized online: --quantization fp8)",
            "online FP8 (per-tensor scales) costed as FP8 weights",
        )
        return dataclasses.replace(model, recipe=recipe)
    chosen = "--precision" if what_if else "the checkpoint"
    if method is None:
        raise SpecError(
            f"--quantization {quantization}: {checkpoint} is unquantized (BF16) and perfsim models only online "
            "FP8 for it (--quantization fp8)",
        )
    raise SpecError(
        f"--quantization {quantization}: {chosen} ({checkpoint}) is quantized with {method}, and vLLM refuses a "
        f"different --quantization (config/model.py _verify_quantization); give --quantization {method} or "
        "leave it out",
    )
