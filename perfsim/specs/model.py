"""Model specs: a Hugging Face ``config.json`` plus a quantization recipe per precision.

``load_model("deepseek-v3.2", precision="fp4")`` returns a ``Model``: the parsed architecture
(``ModelArchitecture``: every layer, MLA / DSA-indexer / MoE dimensions, the MTP layer) and the
``QuantRecipe`` saying which weight dtype each module class uses. Parameter counts and weight groups
(with how vLLM shards them) are derived here; bytes per GPU are computed in ``perfsim.costs.memory``.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from perfsim.errors import SpecError, UnknownNameError
from perfsim.paths import data_dir
from perfsim.specs.loading import load_json_file, load_yaml_file, validation_error_to_spec_error

# ---- dtypes -----------------------------------------------------------------------------------

WeightDtype = Literal["nvfp4", "fp8", "bf16", "fp32"]

#: storage bytes per weight element, block scales included
#: activations travel in BF16 between kernels
ACT_BYTES = 2
#: fp32 logits, scores and scales
FP32_BYTES = 4
#: int32 token indices (the indexer's top-k)
INDEX_BYTES = 4
WEIGHT_BYTES: dict[str, float] = {
    "nvfp4": (4 + 8 / 16) / 8,  # E2M1 + one E4M3 scale per 16 values = 4.5 bits
    "fp8": 1 + 4 / (128 * 128),  # E4M3 + one FP32 scale per 128x128 block
    "bf16": 2.0,
    "fp32": 4.0,
}

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

SUPPORTED_MODEL_TYPES = ("deepseek_v2", "deepseek_v3", "deepseek_v32", "kimi_k2")


# ---- architecture -------------------------------------------------------------------------------


class HFDeepseekConfig(BaseModel):
    """The fields of a DeepSeek-family Hugging Face ``config.json`` that perfsim uses."""

    model_config = ConfigDict(extra="allow", frozen=True)

    model_type: str
    hidden_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    moe_intermediate_size: int = Field(gt=0)
    n_routed_experts: int = Field(gt=0)
    n_shared_experts: int = Field(ge=0)
    num_experts_per_tok: int = Field(gt=0)
    first_k_dense_replace: int = Field(ge=0)
    moe_layer_freq: int = Field(default=1, gt=0)
    q_lora_rank: int | None = Field(default=None, gt=0)
    kv_lora_rank: int = Field(gt=0)
    qk_nope_head_dim: int = Field(gt=0)
    qk_rope_head_dim: int = Field(gt=0)
    v_head_dim: int = Field(gt=0)
    max_position_embeddings: int = Field(gt=0)
    num_nextn_predict_layers: int = Field(default=0, ge=0)
    tie_word_embeddings: bool = False
    n_group: int | None = None
    topk_group: int | None = None
    scoring_func: str = "softmax"
    topk_method: str = "greedy"
    index_n_heads: int | None = Field(default=None, gt=0)
    index_head_dim: int | None = Field(default=None, gt=0)
    index_topk: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> HFDeepseekConfig:
        if self.model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"model_type '{self.model_type}' is not supported yet; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        if self.num_experts_per_tok > self.n_routed_experts:
            raise ValueError("num_experts_per_tok exceeds n_routed_experts")
        if self.first_k_dense_replace > self.num_hidden_layers:
            raise ValueError("first_k_dense_replace exceeds num_hidden_layers")
        if self.model_type == "deepseek_v32" and not (
            self.index_n_heads and self.index_head_dim and self.index_topk
        ):
            raise ValueError("deepseek_v32 needs index_n_heads, index_head_dim and index_topk")
        return self


@dataclass(frozen=True)
class MLADims:
    """Multi-head latent attention dimensions (per model, before tensor parallelism)."""

    num_heads: int
    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int

    @property
    def qk_head_dim(self) -> int:
        """Query/key head size in the expanded (MHA) form: nope + rope (192)."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def latent_dim(self) -> int:
        """Width of the cached latent per token: kv_lora_rank + rope (576)."""
        return self.kv_lora_rank + self.qk_rope_head_dim


@dataclass(frozen=True)
class IndexerDims:
    """DeepSeek Sparse Attention lightning-indexer dimensions."""

    num_heads: int
    head_dim: int
    topk: int


@dataclass(frozen=True)
class MoEDims:
    """Routed / shared expert layout of the MoE layers."""

    num_experts: int
    num_shared_experts: int
    top_k: int
    intermediate_size: int
    n_group: int | None
    topk_group: int | None
    scoring_func: str


@dataclass(frozen=True)
class ModelArchitecture:
    """Everything perfsim needs to know about a model's layers, derived from its config.json."""

    model_type: str
    hidden_size: int
    num_layers: int
    num_dense_layers: int
    num_moe_layers: int
    dense_intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    mla: MLADims
    indexer: IndexerDims | None
    moe: MoEDims
    num_mtp_layers: int
    layer_kinds: tuple[str, ...]  # 'dense' or 'moe' per decoder layer

    @classmethod
    def from_hf_config(cls, cfg: HFDeepseekConfig) -> ModelArchitecture:
        """Build the architecture from a validated config."""
        kinds = tuple(
            "moe" if (i >= cfg.first_k_dense_replace and i % cfg.moe_layer_freq == 0) else "dense"
            for i in range(cfg.num_hidden_layers)
        )
        indexer = None
        if cfg.index_n_heads:
            indexer = IndexerDims(cfg.index_n_heads, cfg.index_head_dim or 0, cfg.index_topk or 0)
        return cls(
            model_type=cfg.model_type,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_hidden_layers,
            num_dense_layers=kinds.count("dense"),
            num_moe_layers=kinds.count("moe"),
            dense_intermediate_size=cfg.intermediate_size,
            vocab_size=cfg.vocab_size,
            max_position_embeddings=cfg.max_position_embeddings,
            tie_word_embeddings=cfg.tie_word_embeddings,
            mla=MLADims(
                cfg.num_attention_heads,
                cfg.q_lora_rank,
                cfg.kv_lora_rank,
                cfg.qk_nope_head_dim,
                cfg.qk_rope_head_dim,
                cfg.v_head_dim,
            ),
            indexer=indexer,
            moe=MoEDims(
                cfg.n_routed_experts,
                cfg.n_shared_experts,
                cfg.num_experts_per_tok,
                cfg.moe_intermediate_size,
                cfg.n_group,
                cfg.topk_group,
                cfg.scoring_func,
            ),
            num_mtp_layers=cfg.num_nextn_predict_layers,
            layer_kinds=kinds,
        )

    # ---- parameter counts per module (whole model, before sharding) -----------------------------
    def attention_params(self) -> dict[str, int]:
        """MLA projection parameters of one layer, by module class (norms under 'attn_norms')."""
        h, m = self.hidden_size, self.mla
        q_in = m.q_lora_rank or h
        out = {
            "q_a": h * m.q_lora_rank if m.q_lora_rank else 0,
            "kv_a": h * m.latent_dim,
            "q_b": q_in * m.num_heads * m.qk_head_dim,
            "kv_b": m.kv_lora_rank * m.num_heads * (m.qk_nope_head_dim + m.v_head_dim),
            "o_proj": m.num_heads * m.v_head_dim * h,
            "attn_norms": (m.q_lora_rank or 0) + m.kv_lora_rank,
        }
        return out

    def indexer_params(self) -> dict[str, int]:
        """Lightning-indexer parameters of one layer (0 for models without DSA)."""
        if self.indexer is None:
            return {"indexer": 0, "indexer_weights_proj": 0}
        h, ix = self.hidden_size, self.indexer
        q_in = self.mla.q_lora_rank or h
        wq_b = q_in * ix.num_heads * ix.head_dim
        wk = h * ix.head_dim
        k_norm = 2 * ix.head_dim  # LayerNorm weight + bias
        return {"indexer": wq_b + wk + k_norm, "indexer_weights_proj": h * ix.num_heads}

    @property
    def expert_params(self) -> int:
        """One routed or shared expert (gate, up, down projections)."""
        return 3 * self.hidden_size * self.moe.intermediate_size

    @property
    def dense_mlp_params(self) -> int:
        """One dense MLP (gate, up, down)."""
        return 3 * self.hidden_size * self.dense_intermediate_size

    @property
    def router_params(self) -> int:
        """Router weight plus the score-correction bias of noaux_tc routing."""
        bias = self.moe.num_experts if self.model_type in ("deepseek_v3", "deepseek_v32", "kimi_k2") else 0
        return self.moe.num_experts * self.hidden_size + bias

    @property
    def embedding_params(self) -> int:
        """Input embedding table."""
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """Output head (0 extra when tied to the embedding)."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    def decoder_layer_params(self, kind: str, *, active: bool) -> int:
        """Parameters of one decoder layer; ``active`` counts only top-k routed experts."""
        attn = sum(self.attention_params().values()) + sum(self.indexer_params().values())
        norms = 2 * self.hidden_size
        if kind == "dense":
            return attn + norms + self.dense_mlp_params
        experts = self.moe.top_k if active else self.moe.num_experts
        return (
            attn + norms + self.router_params + (experts + self.moe.num_shared_experts) * self.expert_params
        )

    @property
    def mtp_layer_params(self) -> int:
        """One MTP module: a MoE decoder layer + enorm, hnorm, eh_proj (2h -> h), shared_head.norm."""
        h = self.hidden_size
        return self.decoder_layer_params("moe", active=False) + 3 * h + 2 * h * h

    @property
    def total_params(self) -> int:
        """Every stored weight of the main model (embedding and lm_head included, MTP excluded)."""
        layers = sum(self.decoder_layer_params(k, active=False) for k in self.layer_kinds)
        return layers + self.embedding_params + self.lm_head_params + self.hidden_size

    @property
    def active_params(self) -> int:
        """Weights a token multiplies: attention, MLPs, shared + top-k experts, router, norms, lm_head.

        The embedding is a row lookup, not a matrix product, and is left out (see
        ``active_params_with_embedding``).
        """
        layers = sum(self.decoder_layer_params(k, active=True) for k in self.layer_kinds)
        head = self.lm_head_params or self.embedding_params
        return layers + head + self.hidden_size

    @property
    def active_params_with_embedding(self) -> int:
        """``active_params`` plus the whole embedding table (the most generous convention)."""
        return self.active_params + (self.embedding_params if self.lm_head_params else 0)


# ---- quantization recipes ------------------------------------------------------------------------


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
    return QuantRecipe("fp4" if algo_dtype == "nvfp4" else "fp8", checkpoint, str(path), main, mtp, kv, note)


def native_fp8_recipe(checkpoint: str, note: str) -> QuantRecipe:
    """DeepSeek's own FP8 block-quantized checkpoint: all decoder linears FP8, embed/head/router BF16."""
    dtypes = {c: "fp8" for c in MODULE_CLASSES}
    dtypes.update(router="bf16", embedding="bf16", lm_head="bf16", indexer_weights_proj="bf16")
    return QuantRecipe("fp8", checkpoint, "native-fp8", dtypes, dict(dtypes), None, note)


def bf16_recipe(checkpoint: str, note: str) -> QuantRecipe:
    """Every weight in BF16."""
    dtypes = {c: "bf16" for c in MODULE_CLASSES}
    return QuantRecipe("bf16", checkpoint, "bf16", dtypes, dict(dtypes), None, note)


# ---- model (architecture + recipe) ----------------------------------------------------------------


class PrecisionEntry(BaseModel):
    """One ``precisions:`` entry of a model.yaml."""

    model_config = ConfigDict(extra="forbid")
    checkpoint: str
    recipe: str = Field(description="A ModelOpt hf_quant_config file, 'native-fp8' or 'bf16'.")
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
    precisions: dict[Literal["fp4", "fp8", "bf16"], PrecisionEntry]


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


def known_models(include_aliases: bool = True) -> list[str]:
    """Names (and aliases) of the bundled models."""
    if include_aliases:
        return sorted(_model_dirs())
    return sorted(p.parent.name for p in data_dir("models").glob("*/model.yaml"))


def load_architecture(config_path: Path) -> ModelArchitecture:
    """Parse and validate a Hugging Face ``config.json``."""
    raw = load_json_file(config_path)
    try:
        cfg = HFDeepseekConfig.model_validate(raw)
    except Exception as exc:
        raise validation_error_to_spec_error(exc, config_path) from None
    return ModelArchitecture.from_hf_config(cfg)


def load_model(name_or_path: str | Path, precision: str = "fp4") -> Model:
    """Load a bundled model by name/alias, a model folder, or a bare ``config.json`` path.

    A bare ``config.json`` has no recipes of its own: ``fp8`` uses the native FP8 block recipe,
    ``bf16`` BF16 everywhere, and ``fp4`` reads ``hf_quant_config.json`` beside it if present.
    Results are cached per (name or path, file time, precision); models are immutable.
    """
    path = Path(name_or_path)
    stamp = path.stat().st_mtime if path.exists() else 0.0
    return _load_model_cached(str(name_or_path), stamp, precision)


@functools.lru_cache(maxsize=64)
def _load_model_cached(name_or_path: str, _stamp: float, precision: str) -> Model:
    if precision not in PRECISION_CHOICES:
        raise SpecError(
            f"unknown precision '{precision}'; allowed: {', '.join(PRECISION_CHOICES)}", field="precision"
        )
    path = Path(name_or_path)
    dirs = _model_dirs()
    if str(name_or_path) in dirs:
        folder = dirs[str(name_or_path)]
    elif str(name_or_path).strip().lower() in _model_ids():
        folder = _model_ids()[str(name_or_path).strip().lower()]
    elif path.is_dir() and (path / "model.yaml").exists():
        folder = path
    elif path.suffix == ".json" or path.is_file():
        return _model_from_bare_config(path, precision)
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
    entry = spec.precisions.get(precision)  # type: ignore[call-overload]
    if entry is None:
        raise SpecError(
            f"no recipe for precision '{precision}'; available: {', '.join(spec.precisions)}",
            source=str(yaml_path),
            field="precisions",
        )
    recipe = _build_recipe(arch, entry, folder, precision)
    return Model(
        spec.name, spec.hf_repo, arch, recipe, str(folder / spec.config), spec.published, str(name_or_path)
    )


def _build_recipe(
    arch: ModelArchitecture, entry: PrecisionEntry, folder: Path, precision: str
) -> QuantRecipe:
    if entry.recipe == "native-fp8":
        return native_fp8_recipe(entry.checkpoint, entry.note)
    if entry.recipe == "bf16":
        return bf16_recipe(entry.checkpoint, entry.note)
    quant_path = (folder / entry.recipe).resolve()
    recipe = recipe_from_modelopt(arch, load_json_file(quant_path), quant_path, entry.checkpoint, entry.note)
    if recipe.precision != precision:
        raise SpecError(
            f"recipe is {recipe.precision}, but it is listed under '{precision}'",
            source=str(quant_path),
            field="quantization.quant_algo",
        )
    return recipe


def _model_from_bare_config(path: Path, precision: str) -> Model:
    arch = load_architecture(path)
    if precision == "fp8":
        recipe = native_fp8_recipe(str(path), "native FP8 block recipe assumed for a bare config.json")
    elif precision == "bf16":
        recipe = bf16_recipe(str(path), "")
    else:
        quant_path = path.parent / "hf_quant_config.json"
        if not quant_path.exists():
            raise SpecError(
                "precision fp4 needs a ModelOpt hf_quant_config.json next to the config",
                source=str(path),
                field="precision",
            )
        recipe = recipe_from_modelopt(arch, load_json_file(quant_path), quant_path, str(path), "")
    return Model(path.stem, str(path), arch, recipe, str(path), {}, str(path))
