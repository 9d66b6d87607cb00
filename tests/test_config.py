"""The hardware description: presets, validation, derived values (contract sec. 1-2)."""

import tomllib

import pytest

from atsnn.config import (HardwareConfig, default_hardware, hardware_from_dict, hardware_to_toml, list_presets,
                          load_hardware)
from atsnn.errors import ConfigError


def test_default_preset_is_the_papers_design():
    hw = default_hardware()
    assert isinstance(hw, HardwareConfig)
    assert (hw.array.rows, hw.array.cols, hw.array.at_units) == (16, 16, 1)
    assert hw.pe_count == 255
    assert (hw.pe.input_spike_buffer_bytes, hw.pe.output_spike_buffer_bytes) == (128, 128)
    assert (hw.at.input_spike_buffer_bytes, hw.at.output_spike_buffer_bytes) == (128, 128)
    assert hw.pe.data_memory_bytes == 1024 and hw.at.data_memory_bytes == 3072
    assert hw.system.clock_hz == 500e6 and hw.system.accelerators == 4 and hw.system.technology_nm == 28
    assert hw.clock_period_s == pytest.approx(2e-9)


def test_derived_ranges_follow_widths():
    hw = default_hardware()
    b = hw.numeric.membrane_bits
    assert hw.membrane_min == -(2 ** (b - 1)) and hw.membrane_max == 2 ** (b - 1) - 1
    assert hw.weight_min == -(2 ** (hw.numeric.weight_bits - 1))
    assert hw.exp_one == 2 ** (hw.at.exp_table_value_bits - 1)
    assert hw.max_leak_shift == b - 1
    assert hw.memory.glb_bytes == hw.memory.glb_banks * hw.memory.glb_bank_bytes


def test_presets_listed_and_small_preset_loads():
    assert {"atsnn28", "atsnn28-small"} <= set(list_presets())
    small = load_hardware("atsnn28-small")
    assert small.pe_count == 4 * 4 - 1
    assert small.pe == default_hardware().pe  # same PE, smaller array


def test_toml_round_trip():
    hw = default_hardware()
    assert hardware_from_dict(tomllib.loads(hardware_to_toml(hw))) == hw


def test_config_is_frozen():
    hw = default_hardware()
    with pytest.raises(Exception):
        hw.array.rows = 3  # type: ignore[misc]


def _doc():
    return tomllib.loads(hardware_to_toml(default_hardware()))


def test_out_of_range_value_names_key_path(tmp_path):
    doc = _doc()
    doc["pe"]["data_memory_bytes"] = 10
    with pytest.raises(ConfigError, match=r"key 'pe\.data_memory_bytes' = 10 is out of range \[64, 1048576\]"):
        hardware_from_dict(doc)


def test_unknown_key_is_rejected():
    doc = _doc()
    doc["numeric"]["weigth_bits"] = 8
    with pytest.raises(ConfigError, match=r"unknown key 'numeric\.weigth_bits'"):
        hardware_from_dict(doc)


def test_wrong_type_is_rejected():
    doc = _doc()
    doc["array"]["rows"] = "16"
    with pytest.raises(ConfigError, match=r"key 'array\.rows' must be an integer"):
        hardware_from_dict(doc)


def test_cross_constraint_threshold_width():
    doc = _doc()
    doc["numeric"]["threshold_bits"] = 16
    with pytest.raises(ConfigError, match=r"numeric\.threshold_bits.*membrane_bits - 1"):
        hardware_from_dict(doc)


def test_missing_file_and_unknown_preset():
    with pytest.raises(ConfigError, match="does not exist"):
        load_hardware("/nonexistent/hw.toml")
    with pytest.raises(ConfigError, match="unknown hardware preset 'nope'"):
        load_hardware("nope")


def test_replace_validates():
    hw = default_hardware()
    assert hw.replace(array={"rows": 4, "cols": 4}).pe_count == 15
    with pytest.raises(ConfigError, match="array.rows"):
        hw.replace(array={"rows": 0})
