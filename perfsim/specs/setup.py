"""Which model, on which GPU, at which precision: the first three flags of every command."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from perfsim.specs.hardware import HardwareSpec, load_hardware
from perfsim.specs.model import Model, load_model


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

    def load(self) -> tuple[Model, HardwareSpec]:
        """Load and validate the model and the hardware."""
        return load_model(self.model, self.precision), load_hardware(self.hw)
