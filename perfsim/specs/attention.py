"""Which MLA attention backend vLLM 0.14.1 runs, and the properties of each that change a prediction.

A backend decides four things perfsim models: the GPUs it runs on, the KV cache dtypes it accepts, the KV
block size it forces, whether its decode kernel takes the 1 + k query tokens of an MTP verify step (else
those steps take the prefill path, which up-projects every cached context token), and which CUDA graphs it
can capture. Sources are vLLM 0.14.1 files: ``platforms/cuda.py`` (selection and forced block sizes),
``v1/attention/backends/mla/*.py`` (query-length support, graph support, KV dtypes) and
``v1/attention/ops/flashmla.py`` (dense FlashMLA on Hopper only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from perfsim.errors import SpecError
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model

AttentionBackend = Literal[
    "auto",
    "CUTLASS_MLA",
    "FLASHINFER_MLA",
    "FLASHMLA",
    "FLASH_ATTN_MLA",
    "TRITON_MLA",
    "FLASHMLA_SPARSE",
    "FLASH_ATTN",
    "FLASHINFER",
    "TRITON_ATTN",
]


@dataclass(frozen=True)
class MlaBackend:
    """One vLLM MLA backend as perfsim sees it.

    ``arch``: 'blackwell' (SM10x), 'hopper' (SM90) or 'any'; ``kv_dtypes``: resolved cache dtypes it accepts;
    ``block_multiple``: block sizes it keeps (multiples of this, plus ``block_extra``; only ``forced_block``
    itself when ``block_exact``), others are forced to ``forced_block``; ``spec_as_decode``: its decode kernel verifies MTP drafts (QueryLenSupport UNIFORM or
    VARLEN); ``graphs``: FULL CUDA graphs it captures ('uniform' batches, 'single_token' decode only, 'never');
    ``decode_head_padding``: query heads its decode kernel computes when a rank holds fewer.
    """

    arch: str
    kv_dtypes: frozenset[str]
    block_multiple: int
    forced_block: int
    spec_as_decode: bool
    graphs: str
    block_extra: tuple[int, ...] = ()
    block_exact: bool = False
    decode_head_padding: int | None = None


_BF16_FP8 = frozenset({"bfloat16", "fp8_e4m3"})
BACKENDS: dict[str, MlaBackend] = {
    "CUTLASS_MLA": MlaBackend(
        arch="blackwell",
        kv_dtypes=_BF16_FP8,
        block_multiple=128,
        forced_block=128,
        spec_as_decode=False,
        graphs="single_token",
        decode_head_padding=128,  # the SM100 kernel computes 128 query heads [cutlass_mla.py:131]
    ),
    "FLASHINFER_MLA": MlaBackend(
        arch="blackwell",
        kv_dtypes=_BF16_FP8,
        block_multiple=64,
        forced_block=64,
        spec_as_decode=True,
        graphs="uniform",
        block_extra=(32,),
    ),
    "FLASHMLA": MlaBackend(
        arch="hopper",
        kv_dtypes=_BF16_FP8,
        block_multiple=64,
        forced_block=64,
        spec_as_decode=True,
        graphs="uniform",
    ),
    "FLASH_ATTN_MLA": MlaBackend(
        arch="hopper",
        kv_dtypes=frozenset({"bfloat16"}),
        block_multiple=16,
        forced_block=16,
        spec_as_decode=True,
        graphs="uniform",
    ),
    "TRITON_MLA": MlaBackend(
        arch="any",
        kv_dtypes=frozenset({"bfloat16"}),
        block_multiple=1,
        forced_block=16,
        spec_as_decode=False,
        graphs="never",
    ),
    "FLASHMLA_SPARSE": MlaBackend(
        arch="any",
        kv_dtypes=frozenset({"bfloat16", "fp8_ds_mla"}),
        block_multiple=64,
        forced_block=64,
        spec_as_decode=True,
        graphs="uniform",
        block_exact=True,
    ),
    # ---- GQA / MHA backends (standard attention) ----
    "FLASH_ATTN": MlaBackend(
        arch="any",
        kv_dtypes=_BF16_FP8,
        block_multiple=16,
        forced_block=16,
        spec_as_decode=True,
        graphs="always",
    ),
    "FLASHINFER": MlaBackend(
        arch="any",
        kv_dtypes=_BF16_FP8,
        block_multiple=16,
        forced_block=16,
        spec_as_decode=True,
        graphs="uniform",
    ),
    "TRITON_ATTN": MlaBackend(
        arch="any",
        kv_dtypes=_BF16_FP8,
        block_multiple=16,
        forced_block=16,
        spec_as_decode=True,
        graphs="always",
    ),
}
#: the backends of each attention family
FAMILY_BACKENDS = {
    "gqa": ("FLASH_ATTN", "FLASHINFER", "TRITON_ATTN"),
    "dsa": ("FLASHMLA_SPARSE",),
    "mla": ("CUTLASS_MLA", "FLASHINFER_MLA", "FLASHMLA", "FLASH_ATTN_MLA", "TRITON_MLA"),
}

#: vLLM's cache block size before a backend forces its own [platforms/cuda.py:160-161]
DEFAULT_BLOCK_SIZE = 16

#: the note printed when perfsim departs from vLLM 0.14.1's default backend
MTP_BACKEND_NOTE = (
    "attention backend FLASHINFER_MLA: vLLM 0.14.1 defaults to CUTLASS_MLA, whose decode kernel takes one token "
    "per request, so every MTP verify step would run the prefill path over the whole context; published MTP "
    "gains on GB300 imply a spec-capable backend (use --attention-backend CUTLASS_MLA for 0.14.1's default)"
)


def _arch(hw: HardwareSpec) -> str:
    if hw.is_blackwell:
        return "blackwell"
    return "hopper" if hw.is_hopper else "other"


def _allowed(model: Model, hw: HardwareSpec) -> list[str]:
    arch = _arch(hw)
    family = FAMILY_BACKENDS[model.arch.attention_kind]
    return [n for n in family if BACKENDS[n].arch in (arch, "any")]


def _default_gqa_backend(model: Model, hw: HardwareSpec) -> str:
    """vLLM's default for standard attention: FlashInfer on Blackwell, FlashAttention on Hopper."""
    arch = _arch(hw)
    if arch == "blackwell":
        return "FLASHINFER"
    return "FLASH_ATTN" if arch == "hopper" else "TRITON_ATTN"


def select_backend(
    model: Model,
    hw: HardwareSpec,
    kv_cache_dtype: str,
    requested: str = "auto",
    num_speculative_tokens: int = 0,
) -> tuple[str, str | None]:
    """The MLA backend and, when perfsim departs from vLLM 0.14.1's default, a note saying why.

    vLLM 0.14.1 runs DeepSeek-V3.2 on FLASHMLA_SPARSE and forces CUTLASS_MLA on Blackwell; elsewhere it takes
    the first valid backend of its priority list: FLASH_ATTN_MLA (BF16 cache only), then FLASHMLA (dense
    FlashMLA, Hopper only), then TRITON_MLA [platforms/cuda.py:45-66, 164-234]. One departure: with MTP on
    Blackwell, ``auto`` takes FLASHINFER_MLA, because CUTLASS_MLA cannot verify drafts on its decode path
    (MTP would run several times slower than plain decoding) while the published GB300 MTP runs gain from
    MTP; FLASHINFER_MLA is the Blackwell default of vLLM releases after 0.14 (vllm PR #32339).
    """
    allowed = _allowed(model, hw)
    note = None
    if requested == "auto":
        arch = _arch(hw)
        if model.arch.attention_kind == "gqa":
            backend = _default_gqa_backend(model, hw)
        elif model.has_sparse_attention:
            backend = "FLASHMLA_SPARSE"
        elif arch == "blackwell":
            backend = "FLASHINFER_MLA" if num_speculative_tokens else "CUTLASS_MLA"
            note = MTP_BACKEND_NOTE if num_speculative_tokens else None
        elif arch == "hopper":
            backend = "FLASH_ATTN_MLA" if kv_cache_dtype == "bfloat16" else "FLASHMLA"
        else:
            backend = "TRITON_MLA"
    elif requested not in allowed:
        raise SpecError(
            f"vLLM 0.14.1 cannot run {model.name} on {hw.name} (compute capability "
            f"{hw.compute_capability}) with {requested}; allowed: auto, {', '.join(allowed)}",
            field="attention_backend",
        )
    else:
        backend = requested
    if kv_cache_dtype not in BACKENDS[backend].kv_dtypes:
        raise SpecError(
            f"the {backend} attention backend does not take a {kv_cache_dtype} KV cache; allowed: "
            f"{', '.join(sorted(BACKENDS[backend].kv_dtypes))}",
            field="kv_cache_dtype",
        )
    return backend, note


def resolve_block_size(
    backend: str, requested: int | None, auto_backend: bool, hw: HardwareSpec
) -> tuple[int, str | None]:
    """The KV block size vLLM ends up with, and a note when it overrides the requested one.

    vLLM starts from 16 and forces the backend's size when the requested one does not suit it; on Hopper an
    automatically selected backend gets FlashMLA's 64 (the platform forces it before the backend is chosen).
    """
    spec = BACKENDS[backend]
    size = requested or DEFAULT_BLOCK_SIZE
    fits = (
        size == spec.forced_block
        if spec.block_exact
        else (size % spec.block_multiple == 0 or size in spec.block_extra)
    )
    forced = spec.forced_block
    if auto_backend and hw.is_hopper:  # vLLM forces FlashMLA's block size before it picks the backend
        fits = fits and size % BACKENDS["FLASHMLA"].forced_block == 0
        forced = max(forced, BACKENDS["FLASHMLA"].forced_block)
    if fits:
        return size, None
    if requested is None:
        return forced, None
    return (
        forced,
        f"vLLM forces KV block size {forced} for the {backend} attention backend (requested {requested})",
    )


def decode_query_threshold(backend: str, num_speculative_tokens: int) -> int:
    """Longest query (new tokens of one request) the backend runs on its decode kernel: vLLM's
    ``reorder_batch_threshold``, 1 + k when the decode kernel verifies MTP drafts, else 1."""
    return 1 + num_speculative_tokens if BACKENDS[backend].spec_as_decode else 1
