"""Bundled models by name, alias or Hugging Face id, model folders and bare ``config.json`` files, loaded as a ``Model``."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from perfsim.errors import SpecError, UnknownNameError
from perfsim.paths import data_dir
from perfsim.specs.dtypes import WEIGHT_BYTES
from perfsim.specs.loading import load_json_file, load_yaml_file, validation_error_to_spec_error
from perfsim.specs.model.architecture import ModelArchitecture
from perfsim.specs.model.hf_configs import load_architecture
from perfsim.specs.model.quantization import (
    MODULE_CLASSES,
    PRECISION_CHOICES,
    QuantRecipe,
    bf16_recipe,
    native_fp8_recipe,
    recipe_from_hf_config,
    recipe_from_modelopt,
)


class PrecisionEntry(BaseModel):
    """One ``precisions:`` entry of a model.yaml."""

    model_config = ConfigDict(extra="forbid")
    checkpoint: str
    recipe: str = Field(
        description="A ModelOpt hf_quant_config file, 'config' (the quantization_config of config.json), "
        "'native-fp8' or 'bf16'."
    )
    note: str = ""


class PublishedCount(BaseModel):
    """A published parameter count with its source."""

    model_config = ConfigDict(extra="forbid")
    value: float = Field(gt=0)
    source: str


class ModelFile(BaseModel):
    """Schema of ``models/<name>/model.yaml``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    aliases: list[str] = Field(default_factory=list)
    hf_repo: str
    config: str = "config.json"
    published: dict[str, PublishedCount] = Field(default_factory=dict)
    precisions: dict[Literal["fp4", "mxfp4", "fp8", "bf16"], PrecisionEntry] = Field(
        description="Recipe per --precision; the first is the checkpoint's own (what --precision auto takes)."
    )


@dataclass(frozen=True)
class Model:
    """A model at one precision: architecture, recipe and where both came from."""

    name: str
    hf_repo: str
    arch: ModelArchitecture
    recipe: QuantRecipe
    config_path: str
    published: dict[str, PublishedCount]
    source: str = ""  # the name or path it was loaded from

    def at_precision(self, precision: str) -> Model:
        """The same model loaded with another precision recipe."""
        return load_model(self.source or self.name, precision)

    @property
    def precision(self) -> str:
        """The ``--precision`` this model was loaded with (fp4, fp8 or bf16)."""
        return self.recipe.precision

    @property
    def has_sparse_attention(self) -> bool:
        """True for DeepSeek Sparse Attention models (V3.2)."""
        return self.arch.indexer is not None

    def with_module_dtypes(self, overrides: Mapping[str, str]) -> Model:
        """The same model with some module classes stored in other weight dtypes (another checkpoint's recipe),
        in the main layers; e.g. ``{"o_proj": "nvfp4"}``."""
        if not overrides:
            return self
        for module, dtype in overrides.items():
            if module not in MODULE_CLASSES:
                raise SpecError(f"unknown module class '{module}'; allowed: {', '.join(MODULE_CLASSES)}")
            if dtype not in WEIGHT_BYTES:
                raise SpecError(
                    f"unknown weight dtype '{dtype}' for {module}; allowed: {', '.join(WEIGHT_BYTES)}"
                )
        changes = ", ".join(f"{m} {d}" for m, d in overrides.items())
        recipe = dataclasses.replace(
            self.recipe,
            module_dtypes={**self.recipe.module_dtypes, **overrides},
            note=f"{self.recipe.note}; modules overridden: {changes}".strip("; "),
        )
        return dataclasses.replace(self, recipe=recipe)


@functools.lru_cache(maxsize=1)
def _model_dirs() -> dict[str, Path]:
    """Bundled model folders by name and alias."""
    out: dict[str, Path] = {}
    for yaml_path in sorted(data_dir("models").glob("*/model.yaml")):
        spec = load_yaml_file(yaml_path)
        out[str(spec.get("name", yaml_path.parent.name))] = yaml_path.parent
        for alias in spec.get("aliases") or []:
            out[str(alias)] = yaml_path.parent
    return out


@functools.lru_cache(maxsize=1)
def _model_ids() -> dict[str, Path]:
    """Bundled model folders by lower-case name, alias, Hugging Face repo and checkpoint id (as `vllm serve`
    takes them, e.g. nvidia/DeepSeek-R1-0528-NVFP4), with or without the organisation."""
    out: dict[str, Path] = {}
    for yaml_path in sorted(data_dir("models").glob("*/model.yaml")):
        spec = load_yaml_file(yaml_path)
        names = [
            spec.get("name", yaml_path.parent.name),
            *(spec.get("aliases") or []),
            spec.get("hf_repo") or "",
        ]
        names += [
            str((p or {}).get("checkpoint") or "").split(" ")[0]
            for p in (spec.get("precisions") or {}).values()
        ]
        for name in (n for n in (str(n).strip().lower() for n in names) if n and n != "none"):
            out.setdefault(name, yaml_path.parent)
            out.setdefault(name.rsplit("/", 1)[-1], yaml_path.parent)
    return out


def _checkpoint_precision(spec: ModelFile, name: str) -> str | None:
    """The precision whose checkpoint a Hugging Face id names (``deepseek-ai/DeepSeek-V3.2`` is the FP8
    checkpoint, ``nvidia/DeepSeek-V3.2-NVFP4`` the NVFP4 one); None for a bundled name, an alias or an id without
    its organisation, which take the model's first recipe."""
    wanted = name.strip().lower()
    for precision, entry in spec.precisions.items():
        checkpoint = entry.checkpoint.split(" ")[0].lower()
        if "/" in wanted and wanted == checkpoint:
            return precision
    return None


def known_models(include_aliases: bool = True) -> list[str]:
    """Names (and aliases) of the bundled models."""
    if include_aliases:
        return sorted(_model_dirs())
    return sorted(p.parent.name for p in data_dir("models").glob("*/model.yaml"))


def load_model(name_or_path: str | Path, precision: str = "auto") -> Model:
    """Load a bundled model by name/alias/Hugging Face id, a model folder (with a ``model.yaml``, or a Hugging
    Face snapshot folder with its ``config.json``), or a bare ``config.json`` path.

    ``precision`` picks the recipe: ``auto`` is the checkpoint's own (a bundled model's first recipe; for a
    bare config, its ``quantization_config``, an ``hf_quant_config.json`` beside it, else BF16). A bare config
    reads ``fp8`` / ``mxfp4`` from its ``quantization_config`` (``fp8`` falls back to the native FP8 block
    recipe), ``fp4`` from a ModelOpt ``hf_quant_config.json`` beside it, ``bf16`` as BF16 everywhere.
    Results are cached per (name or path, file time, precision); models are immutable.
    """
    path = Path(name_or_path)
    stamp = path.stat().st_mtime if path.exists() else 0.0
    return _load_model_cached(str(name_or_path), stamp, precision)


@functools.lru_cache(maxsize=64)
def _load_model_cached(name_or_path: str, _stamp: float, precision: str) -> Model:
    if precision not in (*PRECISION_CHOICES, "auto"):
        raise SpecError(
            f"unknown precision '{precision}'; allowed: auto, {', '.join(PRECISION_CHOICES)}",
            field="precision",
        )
    path = Path(name_or_path)
    dirs = _model_dirs()
    if str(name_or_path) in dirs:
        folder = dirs[str(name_or_path)]
    elif str(name_or_path).strip().lower() in _model_ids():
        folder = _model_ids()[str(name_or_path).strip().lower()]
    elif path.is_dir() and (path / "model.yaml").exists():
        folder = path
    elif path.is_dir() and (path / "config.json").exists():
        return _model_from_bare_config(path / "config.json", precision)
    elif path.suffix == ".json" or path.is_file():
        return _model_from_bare_config(path, precision)
    elif path.is_dir():
        raise SpecError("a model folder needs a model.yaml or a Hugging Face config.json", source=str(path))
    elif "/" in str(name_or_path) and not path.exists():
        raise SpecError(
            f"model '{name_or_path}' is not bundled and perfsim does not download: put its config.json (and any "
            f"hf_quant_config.json) in a folder, or pass a Hugging Face snapshot folder; bundled: "
            f"{', '.join(known_models(include_aliases=False))}",
            field="model",
        )
    else:
        raise UnknownNameError("model", str(name_or_path), known_models())

    yaml_path = folder / "model.yaml"
    try:
        spec = ModelFile.model_validate(load_yaml_file(yaml_path))
    except SpecError:
        raise
    except Exception as exc:
        raise validation_error_to_spec_error(exc, yaml_path) from None
    arch = load_architecture(folder / spec.config)
    if precision == "auto":
        precision = _checkpoint_precision(spec, str(name_or_path)) or next(iter(spec.precisions))
    entry = spec.precisions.get(precision)  # type: ignore[call-overload]
    if entry is None:
        raise SpecError(
            f"no recipe for precision '{precision}'; available: {', '.join(spec.precisions)}",
            source=str(yaml_path),
            field="precisions",
        )
    recipe = _build_recipe(arch, entry, folder, precision)
    return Model(
        name=spec.name,
        hf_repo=spec.hf_repo,
        arch=arch,
        recipe=recipe,
        config_path=str(folder / spec.config),
        published=spec.published,
        source=str(name_or_path),
    )


def _build_recipe(
    arch: ModelArchitecture, entry: PrecisionEntry, folder: Path, precision: str
) -> QuantRecipe:
    if entry.recipe == "native-fp8":
        return native_fp8_recipe(entry.checkpoint, entry.note)
    if entry.recipe == "bf16":
        return bf16_recipe(entry.checkpoint, entry.note)
    if entry.recipe == "config":
        config_path = folder / "config.json"
        quant = load_json_file(config_path).get("quantization_config") or {}
        recipe = recipe_from_hf_config(arch, quant, config_path, entry.checkpoint, entry.note)
    else:
        quant_path = (folder / entry.recipe).resolve()
        recipe = recipe_from_modelopt(
            arch, load_json_file(quant_path), quant_path, entry.checkpoint, entry.note
        )
    if recipe.precision != precision:
        raise SpecError(
            f"recipe is {recipe.precision}, but it is listed under '{precision}'",
            source=str(quant_path),
            field="quantization.quant_algo",
        )
    return recipe


def _model_from_bare_config(path: Path, precision: str) -> Model:
    arch = load_architecture(path)
    quant = load_json_file(path).get("quantization_config") or {}
    modelopt = path.parent / "hf_quant_config.json"
    method = str(quant.get("quant_method", "")).lower() if isinstance(quant, dict) else ""
    if precision == "auto":
        precision = {"mxfp4": "mxfp4", "fp8": "fp8"}.get(method) or ("fp4" if modelopt.exists() else "bf16")
    if precision in ("fp8", "mxfp4") and method == precision:
        recipe = recipe_from_hf_config(arch, quant, path, str(path), "")
    elif precision == "fp8":
        recipe = native_fp8_recipe(str(path), "native FP8 block recipe assumed for a bare config.json")
    elif precision == "bf16":
        recipe = bf16_recipe(str(path), "")
    elif precision == "mxfp4":
        raise SpecError(
            "precision mxfp4 needs quantization_config.quant_method mxfp4 in the config", source=str(path)
        )
    else:
        if not modelopt.exists():
            raise SpecError(
                "precision fp4 needs a ModelOpt hf_quant_config.json next to the config",
                source=str(path),
                field="precision",
            )
        recipe = recipe_from_modelopt(arch, load_json_file(modelopt), modelopt, str(path), "")
    return Model(
        name=path.resolve().parent.name if path.name == "config.json" else path.stem,
        hf_repo=str(path),
        arch=arch,
        recipe=recipe,
        config_path=str(path),
        published={},
        source=str(path),
    )
