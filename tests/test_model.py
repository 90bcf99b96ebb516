"""Model specs: parameter counts against published figures, NVFP4 recipes, KV bytes, bad configs."""

from __future__ import annotations

import json

import pytest

from perfsim.errors import SpecError, UnknownNameError
from perfsim.paths import data_dir
from perfsim.specs.kv_cache import kv_bytes_per_token_layer, resolve_kv_cache_dtype
from perfsim.specs.model import load_model


def rel(a: float, b: float) -> float:
    return abs(a - b) / b


def test_deepseek_v3_parameter_counts():
    arch = load_model("deepseek-v3", "bf16").arch
    assert rel(arch.total_params, 671e9) < 0.01
    # 36.7B activated per DeepSeek's README_WEIGHTS (37B rounded in the paper)
    assert rel(arch.active_params, 36.7e9) < 0.01
    assert round(arch.active_params / 1e9) == 37
    assert arch.num_dense_layers == 3 and arch.num_moe_layers == 58 and arch.num_mtp_layers == 1


def test_deepseek_v2_parameter_counts():
    arch = load_model("deepseek-v2", "bf16").arch
    assert rel(arch.total_params, 236e9) < 0.01
    assert rel(arch.active_params, 21e9) < 0.01
    assert arch.num_dense_layers == 1 and arch.num_moe_layers == 59


def test_building_blocks_match_hand_counts():
    arch = load_model("deepseek-v3.2", "bf16").arch
    assert sum(arch.attention_params().values()) == 187_107_328
    assert sum(arch.indexer_params().values()) == 13_959_424
    assert arch.expert_params == 3 * 7168 * 2048 == 44_040_192
    assert arch.embedding_params == 129280 * 7168
    assert arch.mla.latent_dim == 576 and arch.mla.qk_head_dim == 192
    assert arch.indexer.num_heads == 64 and arch.indexer.head_dim == 128 and arch.indexer.topk == 2048


def test_r1_is_an_alias_of_v3():
    assert load_model("deepseek-r1", "fp8").arch == load_model("deepseek-v3", "fp8").arch


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("nvidia/DeepSeek-R1-0528-NVFP4", "deepseek-v3"),
        ("deepseek-ai/DeepSeek-V3.2", "deepseek-v3.2"),
        ("DeepSeek-R1-0528", "deepseek-v3"),
        ("DSV32", "deepseek-v3.2"),
    ],
)
def test_models_load_by_the_ids_vllm_serve_takes(given, name):
    assert load_model(given, "fp4").name == name


def test_v32_nvfp4_module_split(v32_fp4):
    d = v32_fp4.recipe.module_dtypes
    for module in ("routed_experts", "shared_expert", "dense_mlp", "o_proj"):
        assert d[module] == "nvfp4", module
    for module in (
        "q_a",
        "kv_a",
        "q_b",
        "kv_b",
        "indexer",
        "indexer_weights_proj",
        "lm_head",
        "embedding",
        "router",
    ):
        assert d[module] == "bf16", module
    assert set(v32_fp4.recipe.mtp_dtypes.values()) == {"bf16"}  # model.layers.61* is excluded
    assert v32_fp4.recipe.kv_cache_quant == "fp8"


def test_r1_nvfp4_proxy_keeps_attention_bf16(r1_fp4):
    d = r1_fp4.recipe.module_dtypes
    assert d["o_proj"] == "bf16" and d["q_b"] == "bf16"
    assert d["routed_experts"] == "nvfp4" and d["dense_mlp"] == "nvfp4"
    assert r1_fp4.recipe.kv_cache_quant is None


def test_native_fp8_recipe():
    d = load_model("deepseek-v3.2", "fp8").recipe.module_dtypes
    assert d["routed_experts"] == d["q_b"] == d["o_proj"] == "fp8"
    assert d["lm_head"] == d["embedding"] == d["router"] == "bf16"


def test_kv_bytes_per_token():
    v3 = load_model("deepseek-v3", "fp8")
    assert kv_bytes_per_token_layer(v3, "bfloat16") * 61 == 70_272
    assert kv_bytes_per_token_layer(v3, resolve_kv_cache_dtype("fp8", v3)) * 61 == 35_136
    v32 = load_model("deepseek-v3.2", "fp4")
    assert resolve_kv_cache_dtype("auto", v32) == "fp8_ds_mla"
    assert kv_bytes_per_token_layer(v32, "fp8_ds_mla") == 656 + 132
    assert kv_bytes_per_token_layer(v32, "fp8_ds_mla") * 61 == 48_068
    assert kv_bytes_per_token_layer(v32, "bfloat16") * 61 == 78_324


def test_unknown_model_lists_known():
    with pytest.raises(UnknownNameError, match="deepseek-v3.2"):
        load_model("llama-9000")


def test_unknown_precision():
    with pytest.raises(SpecError, match="allowed: auto, fp4, mxfp4, fp8, bf16"):
        load_model("deepseek-v3", "int3")


def _config_variant(tmp_path, mutate):
    data = json.loads((data_dir("models") / "deepseek-v3" / "config.json").read_text())
    mutate(data)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_config_missing_field_names_file_and_field(tmp_path):
    path = _config_variant(tmp_path, lambda d: d.pop("hidden_size"))
    with pytest.raises(SpecError) as err:
        load_model(path, "bf16")
    assert "config.json" in str(err.value) and "hidden_size" in str(err.value)


def test_config_wrong_type_names_field(tmp_path):
    path = _config_variant(tmp_path, lambda d: d.update(num_attention_heads="many"))
    with pytest.raises(SpecError, match="num_attention_heads"):
        load_model(path, "bf16")


def test_config_unsupported_model_type(tmp_path):
    path = _config_variant(tmp_path, lambda d: d.update(model_type="falcon"))
    with pytest.raises(
        SpecError, match="model_type 'falcon' is not supported; supported: deepseek_v2, .*gpt_oss"
    ):
        load_model(path, "bf16")


def test_config_not_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_model(path, "bf16")


def test_bare_config_path_loads(tmp_path):
    path = _config_variant(tmp_path, lambda d: None)
    model = load_model(path, "fp8")
    assert model.arch.num_layers == 61


# ---- model families beyond DeepSeek ------------------------------------------------------------------------

FAMILIES = {
    # name: (model_type, attention, total, active as the publisher counts it, the counting convention)
    "gpt-oss-120b": ("gpt_oss", "gqa", 116.8e9, 5.1e9, "active_params"),  # OpenAI counts the unembedding only
    "qwen3-235b-a22b": ("qwen3_moe", "gqa", 235.0e9, 22.0e9, "active_params_with_embedding"),
    "llama-3.1-70b": ("llama", "gqa", 70.6e9, 70.6e9, "active_params_with_embedding"),
    "mixtral-8x7b": ("mixtral", "gqa", 46.7e9, 12.9e9, "active_params_with_embedding"),
    "kimi-k2": ("kimi_k2", "mla", 1.03e12, 32.0e9, "active_params_with_embedding"),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_model_families_match_their_published_parameter_counts(name):
    model_type, kind, total, active, convention = FAMILIES[name]
    arch = load_model(name).arch
    assert arch.model_type == model_type and arch.attention_kind == kind
    assert arch.total_params == pytest.approx(total, rel=0.01)
    assert getattr(arch, convention) == pytest.approx(active, rel=0.03)  # "32B" for 32.9B


def test_gpt_oss_layers_by_hand():
    arch = load_model("gpt-oss-120b").arch
    g = arch.gqa
    assert (g.num_heads, g.num_kv_heads, g.head_dim, g.sinks, g.qkv_bias) == (64, 8, 64, True, True)
    assert arch.window_of_layer[:4] == (128, None, 128, None) and arch.num_sliding_layers == 18
    # qkv 2880 x (64 + 2 x 8) x 64 with bias; o_proj 4096 x 2880 with bias and one sink per head
    assert arch.attention_params()["qkv"] == 2880 * 5120 + 5120
    assert arch.attention_params()["o_proj"] == 4096 * 2880 + 2880 + 64
    assert arch.expert_params == 3 * 2880 * 2880 + 2 * 2880 + 2880  # gate_up and down with biases


def test_checkpoint_precisions_from_config_json():
    gptoss = load_model("gpt-oss-120b")  # auto: the checkpoint's own MXFP4
    assert gptoss.precision == "mxfp4"
    assert {k for k, v in gptoss.recipe.module_dtypes.items() if v != "bf16"} == {"routed_experts"}
    kimi = load_model("kimi-k2")
    assert kimi.precision == "fp8" and kimi.recipe.dtype("routed_experts") == "fp8"
    assert kimi.recipe.dtype("lm_head") == "bf16" and kimi.recipe.dtype("router") == "bf16"
    assert load_model("llama-3.1-70b").precision == "bf16"
    with pytest.raises(SpecError, match="no recipe for precision 'fp4'; available: mxfp4, bf16"):
        load_model("gpt-oss-120b", "fp4")


def test_a_hugging_face_snapshot_folder_loads_and_an_unbundled_id_says_why(tmp_path):
    snapshot = tmp_path / "models--Qwen--Qwen3-235B-A22B" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(
        (data_dir("models") / "qwen3-235b-a22b" / "config.json").read_text()
    )
    model = load_model(str(snapshot))
    assert model.arch.model_type == "qwen3_moe" and model.precision == "bf16" and model.arch.gqa.qk_norm
    with pytest.raises(SpecError, match="not bundled and perfsim does not download"):
        load_model("someorg/NotAModel-7B")


def test_block_fp8_experts_need_128_wide_slices_as_vllm_requires():
    from perfsim.specs.deployment import Deployment, resolve_deployment
    from perfsim.specs.hardware import load_hardware

    qwen, h200 = load_model("qwen3-235b-a22b", "fp8"), load_hardware("h200")
    assert resolve_deployment(Deployment(), qwen, h200, 4).moe_tp == 4  # 1536 / 4 = 384 = 3 blocks
    with pytest.raises(SpecError, match="slice of the 1536-wide expert to be a multiple of 128.*gives 192"):
        resolve_deployment(Deployment(), qwen, h200, 8)
    assert resolve_deployment(Deployment(enable_expert_parallel=True), qwen, h200, 8).ep == 8


def test_a_hugging_face_id_decides_the_checkpoint_and_the_summary_names_it(capsys):
    """deepseek-ai/DeepSeek-V3.2 is DeepSeek's FP8 checkpoint, not the NVFP4 one the bundled name defaults to."""
    from perfsim.cli import main
    from perfsim.specs.model import load_model

    assert load_model("deepseek-ai/DeepSeek-V3.2").recipe.checkpoint == "deepseek-ai/DeepSeek-V3.2"
    assert load_model("deepseek-ai/DeepSeek-V3.2").precision == "fp8"
    assert load_model("nvidia/DeepSeek-V3.2-NVFP4").precision == "fp4"
    assert load_model("deepseek-v3.2").precision == "fp4"  # the bundled name keeps the project's default
    assert (
        main(["predict", "--model", "deepseek-ai/DeepSeek-V3.2", "--hw", "gb300", "--num-prompts", "20"]) == 0
    )
    out = capsys.readouterr().out
    assert "Checkpoint:                              deepseek-ai/DeepSeek-V3.2 (fp8)" in out
    assert "4 x gb300 (tp4)" in out  # FP8 needs four GB300s
