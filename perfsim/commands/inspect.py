"""``perfsim list`` and ``perfsim show hw|model``: what perfsim knows, as tables or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from perfsim.costs.memory import model_weight_bytes
from perfsim.errors import PerfsimError
from perfsim.report import format_table, human_bytes, human_count
from perfsim.specs.hardware import PRECISIONS, HardwareSpec, Quantity, known_hardware, load_hardware
from perfsim.specs.kv_cache import kv_bytes_per_token_layer, resolve_kv_cache_dtype
from perfsim.specs.model import PRECISION_CHOICES, Model, known_models, load_model


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``list`` and ``show`` to the CLI."""
    p = sub.add_parser("list", help="List the bundled hardware and models.")
    p.add_argument("--json", action="store_true", help="Print JSON.")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("show", help="Show a hardware or model spec.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    hw = kinds.add_parser("hw", help="A GPU spec (name or YAML path).")
    hw.add_argument("name")
    hw.add_argument("--json", action="store_true", help="Print JSON (values as written, plus SI units).")
    hw.set_defaults(handler=cmd_show_hw)
    model = kinds.add_parser("model", help="A model spec (name, alias, folder or config.json path).")
    model.add_argument("name")
    model.add_argument(
        "--precision", choices=PRECISION_CHOICES, default="fp4", help="Weight recipe [default: fp4]."
    )
    model.add_argument("--json", action="store_true", help="Print JSON.")
    model.set_defaults(handler=cmd_show_model)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def cmd_list(args: argparse.Namespace) -> int:
    """Print the known hardware and model names."""
    hardware = {name: load_hardware(name).display_name for name in known_hardware()}
    models = {}
    for name in known_models(include_aliases=False):
        m = load_model(name, "bf16")
        aliases = [a for a in known_models() if a != name and load_model(a, "bf16").name == m.name]
        models[name] = {"hf_repo": m.hf_repo, "aliases": aliases}
    if args.json:
        print(json.dumps({"hardware": hardware, "models": models}, indent=2))
        return 0
    print(format_table([(k, v) for k, v in hardware.items()], ["hardware", "product"]))
    print()
    print(
        format_table(
            [(k, v["hf_repo"], ", ".join(v["aliases"])) for k, v in models.items()],
            ["model", "hugging face repo", "aliases"],
        )
    )
    return 0


def hardware_summary(hw: HardwareSpec) -> dict[str, Any]:
    """Key numbers of a GPU in SI units."""
    return {
        "name": hw.name,
        "display_name": hw.display_name,
        "peak_dense_flops": {p: hw.peak_flops(p) for p in PRECISIONS if hw.supports(p)},
        "hbm_capacity_bytes": hw.hbm_capacity_bytes,
        "hbm_usable_bytes": hw.hbm_usable_bytes,
        "hbm_bandwidth_Bps": hw.hbm_bandwidth_Bps,
        "scaleup_bandwidth_per_direction_Bps": hw.scaleup_bandwidth_Bps,
        "scaleup_domain_gpus": hw.scaleup_domain_gpus,
        "scaleout_bandwidth_per_direction_Bps": hw.scaleout_bandwidth_Bps,
        "sm_count": hw.sm_count_value,
    }


def cmd_show_hw(args: argparse.Namespace) -> int:
    """Print one hardware spec."""
    hw = load_hardware(args.name)
    if args.json:
        print(json.dumps({"spec": hw.model_dump(mode="json"), "si": hardware_summary(hw)}, indent=2))
        return 0
    print(f"{hw.display_name} ({hw.name}, {hw.architecture}, compute capability {hw.compute_capability})")
    rows = []
    for p, peak in hw.peak_dense.items():
        rows.append((f"peak dense {p}", f"{peak.value:g} {peak.unit}", peak.status.value, peak.source))
    quantities: tuple[tuple[str, Quantity | None], ...] = (
        ("HBM capacity", hw.hbm_capacity),
        ("HBM usable (driver)", hw.hbm_usable),
        ("HBM bandwidth", hw.hbm_bandwidth),
        ("scale-up per direction", hw.scaleup.bandwidth_per_direction),
        ("scale-up domain", hw.scaleup.domain_size),
        ("scale-out per direction", hw.scaleout.bandwidth_per_direction),
        ("SMs", hw.sm_count),
        ("L2", hw.l2_cache),
        ("SFU exp2", hw.sfu_exp_rate),
        ("TDP", hw.tdp),
    )
    for label, q in quantities:
        if q is not None:
            rows.append((label, f"{q.value:g} {q.unit}", q.status.value, q.source))
    print(format_table(rows, ["quantity", "value", "status", "source"], align="llll"))
    return 0


#: how ``perfsim show model`` names each attention family
ATTENTION_NAMES = {"mla": "MLA", "dsa": "MLA + DeepSeek Sparse Attention", "gqa": "GQA"}


def model_summary(model: Model) -> dict[str, Any]:
    """Key facts of a model: parameter counts, layers, weight bytes per precision, KV bytes per token."""
    arch = model.arch
    weight_bytes: dict[str, float] = {}
    for precision in PRECISION_CHOICES:
        try:
            weight_bytes[precision] = model_weight_bytes(model.at_precision(precision))
        except PerfsimError:
            continue  # no recipe for that precision
    kv_auto = resolve_kv_cache_dtype("auto", model)
    kv_by_dtype = {}
    for dtype in ("bfloat16", "fp8"):
        resolved = resolve_kv_cache_dtype(dtype, model)
        kv_by_dtype[resolved] = kv_bytes_per_token_layer(model, resolved) * arch.num_layers
    layers = {
        "num_layers": arch.num_layers,
        "dense_layers": arch.num_dense_layers,
        "moe_layers": arch.num_moe_layers,
        "mtp_layers": arch.num_mtp_layers,
        "kinds": list(arch.layer_kinds),
        "attention": ATTENTION_NAMES[arch.attention_kind]
        + (f", {arch.num_sliding_layers} sliding-window layers" if arch.num_sliding_layers else ""),
        "mla": vars(arch.mla) if arch.mla else None,
        "gqa": vars(arch.gqa) if arch.gqa else None,
        "indexer": vars(arch.indexer) if arch.indexer else None,
        "moe": vars(arch.moe) if arch.moe else None,
    }
    return {
        "name": model.name,
        "hf_repo": model.hf_repo,
        "precision": model.precision,
        "checkpoint": model.recipe.checkpoint,
        "total_params": arch.total_params,
        "active_params": arch.active_params,
        "active_params_with_embedding": arch.active_params_with_embedding,
        "mtp_params": arch.mtp_layer_params * arch.num_mtp_layers,
        "layers": layers,
        "module_dtypes": dict(model.recipe.module_dtypes),
        "mtp_module_dtypes": dict(model.recipe.mtp_dtypes) if arch.num_mtp_layers else None,
        "weight_bytes": weight_bytes,
        "kv_cache_dtype_auto": kv_auto,
        "kv_bytes_per_token": kv_bytes_per_token_layer(model, kv_auto) * arch.num_layers,
        "kv_bytes_per_token_by_dtype": kv_by_dtype,
    }


def cmd_show_model(args: argparse.Namespace) -> int:
    """Print one model spec."""
    model = load_model(args.name, args.precision)
    s = model_summary(model)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    arch = model.arch
    print(f"{model.name} ({model.hf_repo}); precision {model.precision}: {model.recipe.checkpoint}")
    rows = [
        ("total parameters", human_count(s["total_params"])),
        ("active parameters (per token, lm_head incl.)", human_count(s["active_params"])),
        ("MTP module parameters", human_count(s["mtp_params"])),
        (
            "layers",
            f"{arch.num_layers} ({arch.num_dense_layers} dense + {arch.num_moe_layers} MoE)"
            f"{f' + {arch.num_mtp_layers} MTP' if arch.num_mtp_layers else ''}",
        ),
        ("attention", s["layers"]["attention"]),
        (
            "experts",
            f"{arch.moe.num_experts} routed (top-{arch.moe.top_k}) + {arch.moe.num_shared_experts} shared"
            if arch.moe
            else "none (dense MLP layers)",
        ),
    ]
    for precision, b in s["weight_bytes"].items():
        rows.append((f"weights at {precision}", human_bytes(b)))
    rows.append(
        (f"KV bytes per token ({s['kv_cache_dtype_auto']}, all layers)", f"{s['kv_bytes_per_token']:,}")
    )
    print(format_table(rows, ["quantity", "value"], align="ll"))
    print()
    print(format_table(sorted(s["module_dtypes"].items()), ["module", "weight dtype"], align="ll"))
    return 0
