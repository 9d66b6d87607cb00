"""Verilator build and cocotb run of one exported RTL component, shared by the cosimulation tests.

:func:`verilator_build` writes the component's Verilog and its hardware description under the
``build_root`` fixture of ``tests/conftest.py`` (``build/<xdist worker>``, kept across runs: files
are rewritten only when their text changes, so Verilator rebuilds only what changed) and builds it;
:func:`cocotb_run` runs a cocotb test module (``tests/cocotb_*.py``) on that build.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from atsnn.config import HardwareConfig, hardware_to_toml
from atsnn.rtl.export import verilog_text, write_if_changed

TESTS_DIR = Path(__file__).resolve().parent
#: Verilator options of every cosimulation build (warnings stay warnings)
BUILD_ARGS = ("-Wno-fatal", "-Wno-WIDTH")


@dataclass(frozen=True)
class VerilatorBuild:
    """A built simulation: the cocotb runner, its build directory, the Verilog source, the hardware TOML."""

    runner: object
    top: str
    build_dir: Path
    src: Path
    hw_toml: Path


def variant_name(prefix: str, tag: str, mutant: str | None = None) -> str:
    """The build name of one hardware variant ``tag`` of a component, with its mutant if any:
    ``<prefix>-<tag>`` or ``<prefix>-<tag>-mutant-<mutant>``."""
    return f"{prefix}-{tag}" + (f"-mutant-{mutant}" if mutant else "")


def verilator_build(build_root: Path, name: str, component, top: str, hw: HardwareConfig) -> VerilatorBuild:
    """Export ``component`` as module ``top`` and build it with Verilator; skips the test without g++.

    ``name`` identifies the build within ``build_root``: the Verilog goes to ``rtl/<name>.v``, the
    hardware description ``hw`` (the one ``component`` was made from) to ``rtl/<name>.toml``, the
    simulator to ``sim-<name>-verilator``. Distinct components need distinct names; the same name
    reuses (and, if the Verilog changed, rebuilds) the earlier build.
    """
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed for Verilator")
    from cocotb_tools.runner import get_runner
    src_dir = build_root / "rtl"
    src_dir.mkdir(parents=True, exist_ok=True)
    src = src_dir / f"{name}.v"
    write_if_changed(src, verilog_text(component, top))
    hw_toml = src_dir / f"{name}.toml"
    write_if_changed(hw_toml, hardware_to_toml(hw))
    build_dir = build_root / f"sim-{name}-verilator"
    runner = get_runner("verilator")
    runner.build(sources=[src], hdl_toplevel=top, build_dir=build_dir, build_args=list(BUILD_ARGS),
                 timescale=("1ns", "1ps"))
    return VerilatorBuild(runner=runner, top=top, build_dir=build_dir, src=src, hw_toml=hw_toml)


def cocotb_run(built: VerilatorBuild, test_module: str, test_dir: Path, **env) -> None:
    """Run the cocotb module ``test_module`` (one ``@cocotb.test``) on ``built`` in ``test_dir``.

    The testbench sees ``env`` (values as strings), ``HW_PRESET`` = the build's hardware TOML, and
    ``tests/`` and the repository root on ``PYTHONPATH``; its assertion failures are rewritten like
    pytest's. A failing test raises ``SystemExit`` (under pytest the runner exits by itself, outside
    this function does); a module that ran no test fails an assertion.
    """
    from cocotb_tools.runner import get_results
    extra = {"COCOTB_REWRITE_ASSERTION_FILES": "cocotb_*.py", "HW_PRESET": str(built.hw_toml),
             "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), str(TESTS_DIR.parent), os.environ.get("PYTHONPATH", "")])}
    extra.update({k: str(v) for k, v in env.items()})
    xml = built.runner.test(hdl_toplevel=built.top, test_module=test_module, build_dir=built.build_dir,
                            test_dir=test_dir, extra_env=extra)
    tests, failed = get_results(Path(xml))
    if failed:
        raise SystemExit(1)
    assert tests == 1, f"the cocotb test of {test_module} did not run (did the module import?)"


def assert_cosim_fails(built: VerilatorBuild, test_module: str, test_dir: Path, **env) -> None:
    """The mutation tests' check: :func:`cocotb_run` on ``built``, a deliberately faulty component, must fail."""
    with pytest.raises(SystemExit):
        cocotb_run(built, test_module, test_dir, **env)
