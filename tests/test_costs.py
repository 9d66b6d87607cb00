"""Cost tables: presets, sources, validation, and a hand-counted action set (contract sec. 8)."""

import tomllib

import pytest

from atsnn.costs import default_costs, costs_from_dict, list_cost_presets, load_costs, PRESET_DIR
from atsnn.errors import ConfigError


def test_presets_exist_with_versions_and_sources():
    assert {"sata28-500mhz", "sata28-400mhz", "horowitz45"} <= set(list_cost_presets())
    for name in list_cost_presets():
        ct = load_costs(name)
        assert ct.version and ct.ref.startswith(f"{ct.name} v{ct.version}")
        assert all(r["source"].strip() for r in ct.rows())


def test_default_is_column_a_with_lpddr4():
    ct = default_costs()
    assert ct.name == "sata28-500mhz" and ct.technology_nm == 28 and ct.dram == "lpddr4"
    assert ct.energy_pj("logic", "add16") == pytest.approx(0.0734)
    assert ct.dram_pj_per_bit == pytest.approx(8.0)


def test_column_b_is_column_a_times_clock_ratio():
    a, b = load_costs("sata28-500mhz"), load_costs("sata28-400mhz")
    for kind, bits in [("add", 16), ("compare", 16), ("mul", 16), ("register", 8)]:
        assert b.logic_pj(kind, bits) == pytest.approx(a.logic_pj(kind, bits) * 2.5 / 2.0, rel=1e-3)
    assert b.memory_access_pj("pe_data_memory", "read") == a.memory_access_pj("pe_data_memory", "read")


def test_dram_alternatives_selectable():
    ct = load_costs("sata28-500mhz", dram="ddr3")
    assert ct.dram_pj_per_bit == 70.0 and "dram=ddr3" in ct.ref
    with pytest.raises(ConfigError, match="DRAM 'sdram' is not in cost table"):
        load_costs("sata28-500mhz", dram="sdram")


def test_width_lookup_uses_smallest_tabulated_width_at_least_as_wide():
    ct = default_costs()
    assert ct.logic_pj("add", 24) == ct.energy_pj("logic", "add32")
    assert ct.logic_pj("add", 16) == ct.energy_pj("logic", "add16")
    assert ct.logic_pj("compare", 9) == ct.energy_pj("logic", "compare16")


def test_hand_counted_action_set():
    """One PE neuron, one timestep, written out by hand with the column-A numbers.

    3 synops: 3 x (add32 0.152 [24-bit accumulator] ) = 0.456
    1 leak subtract + 1 reset subtract (add16 0.0734 each) = 0.1468
    1 threshold compare (compare16 0.0391) = 0.0391
    4 data memory reads (0.3452 each, 2 B port) = 1.3808
    2 data memory writes (0.2638 each) = 0.5276
    16 bits of DRAM at 8 pJ/bit = 128.0
    total = 0.456 + 0.1468 + 0.0391 + 1.3808 + 0.5276 + 128.0 = 130.5503 pJ
    """
    ct = default_costs()
    counts = {("logic", "add32"): 3, ("logic", "add16"): 2, ("logic", "compare16"): 1,
              ("pe_data_memory", "read"): 4, ("pe_data_memory", "write"): 2, ("dram", "lpddr4"): 16}
    assert ct.energy_of(counts) == pytest.approx(130.5503, abs=1e-9)
    assert ct.memory_pj_per_byte("pe_data_memory", "read") == pytest.approx(0.3452 / 2)


def test_bad_table_names_entry():
    doc = tomllib.loads((PRESET_DIR / "sata28-500mhz.toml").read_text())
    doc["energy"][1]["energy_pj"] = -1.0
    with pytest.raises(ConfigError, match=r"energy\[1\]\.energy_pj.*logic\.add16"):
        costs_from_dict(doc)
    doc = tomllib.loads((PRESET_DIR / "sata28-500mhz.toml").read_text())
    del doc["energy"][0]["source"]
    with pytest.raises(ConfigError, match=r"missing key 'energy\[0\]\.source'"):
        costs_from_dict(doc)


def test_horowitz_has_no_leakage():
    ct = load_costs("horowitz45")
    assert ct.technology_nm == 45
    assert ct.leakage_mw("pe_data_memory") == 0.0
    assert ct.logic_pj("add", 32) == 0.1
