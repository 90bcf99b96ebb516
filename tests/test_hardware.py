"""Hardware specs: published numbers, units, sources, and clear errors on bad files."""

from __future__ import annotations

import pytest
import yaml

from perfsim.errors import SpecError, UnknownNameError
from perfsim.paths import data_dir
from perfsim.specs.hardware import HardwareSpec, known_hardware, load_hardware


def test_gb300_published_numbers(gb300):
    assert gb300.peak_flops("nvfp4") == 15e15  # dense; 20 PF is the sparse rate
    assert gb300.peak_flops("nvfp4", sparse=True) == 20e15
    assert gb300.peak_flops("fp8") == 5e15
    assert gb300.peak_flops("bf16") == 2.5e15
    assert gb300.hbm_capacity_bytes == 288e9
    assert gb300.hbm_bandwidth_Bps == 8e12
    assert gb300.scaleup_bandwidth_Bps == 900e9  # 1.8 TB/s bidirectional
    assert gb300.scaleup_domain_gpus == 72
    assert gb300.scaleout_bandwidth_Bps == 100e9  # 800 Gb/s
    assert gb300.hbm_usable_bytes == 284208 * 2**20


@pytest.mark.parametrize("name", ["gb300", "b300", "gb200", "b200", "h200", "h100"])
def test_every_required_gpu_loads_with_sources(name):
    hw = load_hardware(name)
    assert hw.supports("bf16") and hw.supports("fp8")
    assert hw.supports("nvfp4") == (hw.architecture != "hopper")
    for q in [*hw.peak_dense.values(), hw.hbm_capacity, hw.hbm_bandwidth, hw.scaleup.bandwidth_per_direction]:
        assert q.source.strip()


def test_known_hardware_lists_bundled_files():
    assert {"gb300", "b300", "gb200", "b200", "h200", "h100"} <= set(known_hardware())


def test_scaled_is_a_marked_what_if(gb300):
    fast = gb300.scaled(hbm_bandwidth=1.5, flops_nvfp4=2)
    assert fast.hbm_bandwidth_Bps == pytest.approx(12e12)
    assert fast.peak_flops("nvfp4") == pytest.approx(30e15)
    assert fast.peak_flops("fp8") == gb300.peak_flops("fp8")
    assert fast.hbm_bandwidth.status.value == "what-if"
    with pytest.raises(SpecError, match="allowed"):
        gb300.scaled(warp_speed=2)


def _write_variant(tmp_path, mutate):
    data = yaml.safe_load((data_dir("hardware") / "gb300.yaml").read_text())
    mutate(data)
    path = tmp_path / "my_gpu.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_unknown_name_lists_known():
    with pytest.raises(UnknownNameError) as err:
        load_hardware("gb301")
    assert "gb300" in str(err.value) and "h200" in str(err.value)


@pytest.mark.parametrize(
    ("given", "name"), [("NVIDIA GB300 NVL72", "gb300"), ("H200-SXM", "h200"), ("B300 HGX", "b300")]
)
def test_product_names_as_tables_write_them(given, name):
    assert load_hardware(given).name == name


def test_ambiguous_product_name_is_refused():
    with pytest.raises(UnknownNameError):
        load_hardware("GB200 or B200")


def test_negative_bandwidth_names_file_and_field(tmp_path):
    path = _write_variant(tmp_path, lambda d: d["hbm_bandwidth"].update(value=-8))
    with pytest.raises(SpecError) as err:
        load_hardware(path)
    assert (
        "my_gpu.yaml" in str(err.value) and "hbm_bandwidth" in str(err.value) and "positive" in str(err.value)
    )


def test_wrong_unit_lists_allowed_units(tmp_path):
    path = _write_variant(tmp_path, lambda d: d["hbm_bandwidth"].update(unit="GHz"))
    with pytest.raises(SpecError) as err:
        load_hardware(path)
    assert "hbm_bandwidth" in str(err.value) and "TB/s" in str(err.value)


def test_missing_field_is_named(tmp_path):
    path = _write_variant(tmp_path, lambda d: d.pop("hbm_bandwidth"))
    with pytest.raises(SpecError, match="hbm_bandwidth.*required field is missing"):
        load_hardware(path)


def test_missing_source_is_refused(tmp_path):
    path = _write_variant(tmp_path, lambda d: d["peak_dense"]["fp8"].pop("source"))
    with pytest.raises(SpecError, match=r"peak_dense\.fp8\.source"):
        load_hardware(path)


def test_unknown_precision_is_refused(tmp_path):
    path = _write_variant(
        tmp_path, lambda d: d["peak_dense"].update(fp3={"value": 1, "unit": "PFLOPS", "source": "x"})
    )
    with pytest.raises(SpecError, match="unknown precision 'fp3'"):
        load_hardware(path)


def test_malformed_yaml_names_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="broken.yaml.*not valid YAML"):
        load_hardware(path)


def test_schema_rejects_zero_domain():
    data = yaml.safe_load((data_dir("hardware") / "h100.yaml").read_text())
    data["scaleup"]["domain_size"]["value"] = 0
    with pytest.raises(ValueError, match="domain_size"):
        HardwareSpec.model_validate(data)


def test_a_number_without_a_status_is_unverified_not_vendor_data(tmp_path):
    text = (data_dir("hardware") / "gb300.yaml").read_text()
    text = text.replace(
        'hbm_bandwidth: {value: 8, unit: TB/s, source: "S1; S4", status: primary}',
        "hbm_bandwidth: {value: 8, unit: TB/s, source: mine}",
    )
    mine = tmp_path / "mine.yaml"
    mine.write_text(text)
    assert load_hardware(str(mine)).hbm_bandwidth.status.value == "unverified"


def test_a_profile_without_parameters_is_spec_only():
    from perfsim.calibration.profiles import provenance

    assert provenance({"name": "empty", "params": {}}, load_hardware("gb300")).startswith("spec-only")


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("hbm_bandwidth: {value: 8,", "hbm_bandwidth: {value: true,", "must be a number, got True"),
        ('compute_capability: "10.3"', "compute_capability: banana", "expected MAJOR.MINOR"),
        ("domain_size: {value: 72,", "domain_size: {value: 0.5,", "a count must be a whole number"),
        (
            "hbm_bandwidth: {value: 8,",
            "tdp: {value: 1, unit: W, source: x}\nhbm_bandwidth: {value: 8,",
            "duplicate key 'tdp'",
        ),
    ],
)
def test_absurd_hardware_numbers_are_refused(tmp_path, old, new, needle):
    text = (data_dir("hardware") / "gb300.yaml").read_text()
    assert old in text
    mine = tmp_path / "mine.yaml"
    mine.write_text(text.replace(old, new, 1))
    with pytest.raises(SpecError, match=needle):
        load_hardware(str(mine))


def test_numbers_far_outside_any_shipping_gpu_are_noted(tmp_path):
    text = (data_dir("hardware") / "gb300.yaml").read_text()
    mine = tmp_path / "mine.yaml"
    mine.write_text(text.replace("hbm_bandwidth: {value: 8,", "hbm_bandwidth: {value: 1e30,", 1))
    notes = load_hardware(str(mine)).implausible()
    assert len(notes) == 1 and "hbm_bandwidth = 1e+30 TB/s is far outside any shipping GPU" in notes[0]
