"""Cosimulation of the exported AT unit (Verilator) against hwsim.reference."""

import pytest

from atsnn.config import load_hardware
from cosim_build import cocotb_run, verilator_build
from rtl.at_unit import AtUnit

TOP = "atsnn_at"
pytestmark = pytest.mark.cosim


@pytest.fixture(scope="module")
def built(build_root):
    hw = load_hardware("atsnn28")
    return verilator_build(build_root, "at", AtUnit(hw), TOP, hw)


@pytest.mark.parametrize("profile, steps, seed", [("random", 4000, 1), ("ties", 300, 2), ("far", 300, 3),
                                                  ("first", 100, 4), ("never", 100, 5)])
def test_at_cosim(built, tmp_path, profile, steps, seed):
    cocotb_run(built, "cocotb_at", tmp_path, AT_PROFILE=profile, AT_STEPS=steps, AT_SEED=seed)
