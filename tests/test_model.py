"""Model specs: parameter counts against published figures, NVFP4 recipes, KV bytes, bad configs."""

from __future__ import annotations

import json

import pytest

from perfsim.errors import SpecError, UnknownNameError
from perfsim.paths import data_dir
from perfsim.specs.deployment import kv_bytes_per_token_layer, resolve_kv_cache_dtype
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
    with pytest.raises(SpecError, match="allowed: fp4, fp8, bf16"):
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
    path = _config_variant(tmp_path, lambda d: d.update(model_type="llama"))
    with pytest.raises(SpecError, match="model_type 'llama' is not supported"):
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
