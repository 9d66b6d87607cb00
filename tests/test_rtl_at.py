"""Cosimulation of the exported AT unit (Verilator) against hwsim.reference."""

import os
import shutil
from pathlib import Path

import pytest

from atsnn.config import load_hardware
from rtl.at_unit import AtUnit
from rtl.export import verilog_text, write_if_changed

TOP = "atsnn_at"
pytestmark = pytest.mark.cosim


@pytest.fixture(scope="module")
def built(build_root):
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed for Verilator")
    from cocotb_tools.runner import get_runner
    src_dir = build_root / "rtl"
    src_dir.mkdir(parents=True, exist_ok=True)
    src = src_dir / "at.v"
    write_if_changed(src, verilog_text(AtUnit(load_hardware("atsnn28")), TOP))
    build_dir = build_root / "sim-at-verilator"
    runner = get_runner("verilator")
    runner.build(sources=[src], hdl_toplevel=TOP, build_dir=build_dir, build_args=["-Wno-fatal", "-Wno-WIDTH"],
                 timescale=("1ns", "1ps"))
    return runner, build_dir


@pytest.mark.parametrize("profile, steps, seed", [("random", 2500, 1), ("ties", 300, 2), ("far", 300, 3),
                                                  ("first", 100, 4), ("never", 100, 5)])
def test_at_cosim(built, tmp_path, profile, steps, seed):
    runner, build_dir = built
    tests_dir = Path(__file__).parent
    env = {"COCOTB_REWRITE_ASSERTION_FILES": "cocotb_*.py", "AT_PROFILE": profile, "AT_STEPS": str(steps),
           "AT_SEED": str(seed),
           "PYTHONPATH": os.pathsep.join([str(tests_dir), str(tests_dir.parent), os.environ.get("PYTHONPATH", "")])}
    runner.test(hdl_toplevel=TOP, test_module="cocotb_at", build_dir=build_dir, test_dir=tmp_path, extra_env=env)
