"""`atsnn rtl synth`: Yosys synth_xilinx resource counts for the PEs (IF/LIF, iLIF, PSN), the AT unit and the array
(extrapolated from the blocks, or with ``--program`` the generated array top, synthesised)."""

import pytest

from atsnn.cli import main
from atsnn.rtl.synth import SEVEN_SERIES, XC7A100T, Resources, kept_instances, module_breakdown, parse_stat, smallest_part

STAT = """
      953 cells
       30   CARRY4
       53   FDRE
       63   LUT2
      178   LUT6
       32   RAM64M
        1   RAMB18E1
        2   DSP48E1
"""


#: ``stat`` of a design with a submodule: per-module sections, then the hierarchy totals
STAT_HIER = """
=== top ===
        +----------Local Count, excluding submodules.
       20 cells
       10   FDRE
        9   LUT6
        1   top.pe0
=== top.pe0 ===
        +----------Local Count, excluding submodules.
       12 cells
        5   FDRE
        6   LUT6
        1   RAMB18E1
=== design hierarchy ===
        +----------Count including submodules.
       32 top
       12 top.pe0
        +----------Count including submodules.
       32 cells
       15   FDRE
       15   LUT6
        1   RAMB18E1
        1 submodules
        1   top.pe0
"""


def test_parse_stat_counts_lutram_bram_and_dsp():
    r = parse_stat(STAT)
    assert (r.lut, r.lutram, r.ff, r.bram36, r.dsp) == (63 + 178 + 128, 128, 53, 0.5, 2)


def test_parse_stat_counts_each_cell_of_a_hierarchy_once():
    r = parse_stat(STAT_HIER)
    assert (r.lut, r.ff, r.bram36) == (15, 15, 0.5)
    assert kept_instances(STAT_HIER, "top", "pe") == 1
    parts = module_breakdown(STAT_HIER, "top")
    assert (parts["pes"].ff, parts["pes"].bram36, parts["own"].ff, parts["own"].lut, parts["at"].lut) == (5, 0.5, 10, 9, 0)


def test_part_capacities_and_smallest_part():
    """DS180 capacities (4 LUTs per slice, 64 bits of distributed RAM per LUT), smallest part first; a row
    fits a part only when every resource does."""
    assert XC7A100T == dict(lut=63_400, lutram=19_008, ff=126_800, bram36=135, dsp=240)
    assert SEVEN_SERIES["XC7K410T"]["lutram"] == 90_608 and SEVEN_SERIES["XC7K325T"]["lut"] == 203_800
    luts = [p["lut"] for p in SEVEN_SERIES.values()]
    assert luts == sorted(luts)
    assert smallest_part(Resources(28_771, 3_708, 6_550, 32.5, 9)) == "XC7A100T"  # 16x16 digits MLP array
    # LUTRAM (76k) beyond an XC7K325T's 64,000 although the LUTs would fit there
    assert smallest_part(Resources(183_866, 75_996, 12_093, 128, 9)) == "XC7K410T"
    assert smallest_part(Resources(1_000, 0, 1_000, 0, 255)) == "XC7A200T"  # 255 PSN tap multipliers
    assert smallest_part(Resources(1_000, 0, 1_000, 136, 0)) == "XC7A200T"  # one RAMB36 over
    assert smallest_part(Resources(500_000, 0, 0, 0, 0)) is None


@pytest.mark.slow
def test_synth_cli(tmp_path, capsys):
    assert main(["rtl", "synth", "--hw", "atsnn28-small", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| PE (one) |" in out and "array 4x4 (extrapolated: 15 PE + 1 AT; no parameter memories" in out
    import pandas as pd
    d = pd.read_csv(tmp_path / "synth.csv").set_index("block")
    assert list(d.index[:4]) == ["PE (one)", "PE with iLIF mode (one)", "PE sliding PSN (one)", "AT unit"]
    pe, at, arr = d.loc["PE (one)"], d.loc["AT unit"], d.iloc[4]
    ilif, psn = d.loc["PE with iLIF mode (one)"], d.loc["PE sliding PSN (one)"]
    assert pe.lut > 100 and pe.ff > 20 and at.dsp >= 1  # the AT unit's multipliers map to DSP48
    assert ilif.lut > 100 and ilif.dsp == 0  # the iLIF doubling is a shift: no multiplier
    assert psn.dsp == 1 and psn.ff > pe.ff  # one tap multiplier; the UPDATE's registers and counters
    assert arr.lut == 15 * pe.lut + at.lut
    assert bool(arr.fits_xc7a100t) == (arr.lut <= XC7A100T["lut"] and arr.bram36 <= XC7A100T["bram36"]
                                       and arr.lutram <= XC7A100T["lutram"])


@pytest.mark.slow
def test_synth_cli_program_synthesises_the_array_top(tmp_path, capsys):
    """The 4x4 array top of the digits MLP (about 35 s of Yosys on one core, the blocks on the other)."""
    import pandas as pd
    from atsnn.program import save_program
    from atsnn.compiler.pipeline import compile_model
    from atsnn.workloads.demo import MLP_MODEL
    prog = tmp_path / "mlp"
    save_program(compile_model(MLP_MODEL, hw="atsnn28-small"), prog)
    assert main(["rtl", "synth", "--program", str(prog), "-o", str(tmp_path / "syn")]) == 0
    out = capsys.readouterr().out
    assert "| array 4x4 for digits_mlp (synthesised) |" in out and "extrapolated" not in out
    d = pd.read_csv(tmp_path / "syn" / "synth.csv").set_index("block")
    pe, at, arr = d.loc["PE (one)"], d.loc["AT unit"], d.loc["array 4x4 for digits_mlp (synthesised)"]
    assert arr.method == "synthesised" and arr.yosys_s > 0
    assert arr.pes == 15 and "15 of its 15 PEs remain" in out  # the MLP's 64 hidden neurons use every PE
    # all 15 PEs and the AT unit are there: their state memories (one RAMB18 each), most of their logic
    # (outputs the array leaves unread are dropped), the AT unit's multipliers
    # plus one RAMB18 per PE for its connection lists (CONN and PAIR words, registered reads)
    assert arr.bram36 >= 15 * (pe.bram36 + 0.5) + at.bram36
    assert arr.lut > 0.5 * 15 * pe.lut and arr.ff > 15 * 20 and arr.dsp >= at.dsp
    assert arr.pes_lut > 0.5 * 15 * pe.lut and arr.at_lut > 0.5 * at.lut
    assert arr.pes_lut + arr.at_lut + arr.own_lut == arr.lut and arr.pes_ff + arr.at_ff + arr.own_ff == arr.ff
    # the neuron slots (bias, initial membrane), read combinationally, stay in LUTRAM
    assert arr.own_lutram > 0 and arr.lutram == arr.pes_lutram + arr.at_lutram + arr.own_lutram
    assert bool(arr.fits_xc7a100t) == (arr.lut <= XC7A100T["lut"] and arr.lutram <= XC7A100T["lutram"]
                                       and arr.ff <= XC7A100T["ff"] and arr.bram36 <= XC7A100T["bram36"]
                                       and arr.dsp <= XC7A100T["dsp"])


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_synth_cli_program_errors(tmp_path, capsys):
    """An unsupported program, or --hw other than the program's hardware: one line, exit 2, nothing written."""
    from atsnn.program import save_program
    from atsnn.compiler.ilif import to_ilif
    from atsnn.compiler.nir_import import import_nir
    from atsnn.compiler.pipeline import compile_model
    from atsnn.workloads.demo import MLP_MODEL

    def err(args):
        assert main(args) == 2
        e = capsys.readouterr().err.strip()
        assert e.startswith("error: ") and len(e.splitlines()) == 1
        return e

    ilif = tmp_path / "ilif"
    save_program(compile_model(to_ilif(import_nir(MLP_MODEL), 4), hw="atsnn28-small"), ilif)
    out = tmp_path / "syn"
    e = err(["rtl", "synth", "--program", str(ilif), "-o", str(out)])
    assert "layer 'fc0'" in e and "not in the array top" in e
    mlp = tmp_path / "mlp"
    save_program(compile_model(MLP_MODEL, hw="atsnn28-small"), mlp)
    e = err(["rtl", "synth", "--program", str(mlp), "--hw", "atsnn28", "-o", str(out)])
    assert "atsnn28-small" in e and "--hw" in e
    assert "does not exist" in err(["rtl", "synth", "--program", str(tmp_path / "nope"), "-o", str(out)])
    assert not out.exists()


def test_first_yosys_use_compiles_once_under_parallel_starts(tmp_path):
    """Two processes starting Yosys on an empty YoWASP cache: the module is compiled once (the
    other waits on the lock instead of loading a half-written cache file), both then run."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "YOWASP_CACHE_DIR": str(tmp_path / "cache")}
    code = ("from atsnn.rtl.synth import warm_yosys_cache, yosys_bin; import subprocess; "
            "c = warm_yosys_cache(); r = subprocess.run([yosys_bin(), '-V'], capture_output=True, "
            "text=True); print(r.returncode, r.stdout.strip()[:20], 'compiled=%s' % c)")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all(o[0].startswith("0 Yosys") for o in outs), outs
    assert sum(o[0].count("compiled=True") for o in outs) == 1, outs
    assert "Preparing to run" not in "".join(o[1] for o in outs)  # the 2nd run found the cache
