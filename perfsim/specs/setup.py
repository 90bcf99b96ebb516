"""Which model, on which GPU, at which precision: the first three flags of every command."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from perfsim.specs.hardware import HardwareSpec, load_hardware
from perfsim.specs.model import Model, load_model
from perfsim.specs.model.quantization_flag import VllmQuantization, apply_quantization_flag


class Setup(BaseModel):
    """A model name (or config path), a hardware name (or YAML path) and a precision recipe."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default="deepseek-v3.2",
        description="Model name or alias, a Hugging Face id as `vllm "
        "serve` takes it (e.g. nvidia/DeepSeek-R1-0528-NVFP4), a model folder, or a config.json path.",
    )
    hw: str = Field(
        default="gb300", description="Hardware name (see `perfsim list`) or a hardware YAML path."
    )
    precision: Literal["auto", "fp4", "mxfp4", "fp8", "bf16"] = Field(
        default="auto",
        description="Weight recipe: auto (the checkpoint's own: NVFP4 for the DeepSeek default, MXFP4 for "
        "gpt-oss), fp4 (NVIDIA NVFP4 checkpoint), mxfp4, fp8 (FP8 blocks), bf16.",
    )

    quantization: VllmQuantization | None = Field(
        default=None,
        json_schema_extra={"cli": ["-q", "--quantization"], "metavar": "METHOD"},
        description="vLLM's --quantization: must match the checkpoint's method (modelopt_fp4, fp8, mxfp4), as "
        "vLLM checks; fp8 on an unquantized checkpoint quantizes it online.",
    )

    def load(self) -> tuple[Model, HardwareSpec]:
        """Load and validate the model and the hardware."""
        model = load_model(self.model, self.precision)
        model = apply_quantization_flag(model, self.quantization, what_if=self.precision != "auto")
        return model, load_hardware(self.hw)
