"""Model specs: a Hugging Face ``config.json`` plus a quantization recipe per precision.

``load_model("deepseek-v3.2", precision="fp4")`` returns a ``Model``: the parsed architecture
(``ModelArchitecture``: every layer, MLA / DSA-indexer / MoE dimensions, the MTP layer) and the
``QuantRecipe`` saying which weight dtype each module class uses. Bytes per GPU (with how vLLM shards the
weights) are computed in ``perfsim.costs.memory``.

Modules: ``config`` and ``hf_configs`` (the config.json schemas by model_type), ``architecture`` (layers, dimensions, parameter counts),
``quantization`` (recipes from the checkpoint) and ``lookup`` (names, folders and loading).
"""

from perfsim.specs.model.architecture import GQADims, IndexerDims, MLADims, ModelArchitecture, MoEDims
from perfsim.specs.model.config import HFDeepseekConfig
from perfsim.specs.model.hf_configs import SUPPORTED_MODEL_TYPES, load_architecture
from perfsim.specs.model.lookup import Model, ModelFile, known_models, load_model
from perfsim.specs.model.quantization import (
    MODULE_CLASSES,
    PRECISION_CHOICES,
    QuantRecipe,
    bf16_recipe,
    native_fp8_recipe,
    recipe_from_modelopt,
)

__all__ = [
    "MODULE_CLASSES",
    "PRECISION_CHOICES",
    "SUPPORTED_MODEL_TYPES",
    "GQADims",
    "HFDeepseekConfig",
    "IndexerDims",
    "MLADims",
    "Model",
    "ModelArchitecture",
    "ModelFile",
    "MoEDims",
    "QuantRecipe",
    "bf16_recipe",
    "known_models",
    "load_architecture",
    "load_model",
    "native_fp8_recipe",
    "recipe_from_modelopt",
]
