"""`atsnn rtl synth`: Yosys synth_xilinx resource counts for the PEs (IF/LIF, iLIF, PSN), the AT unit and the array."""

import pytest

from atsnn.cli import main
from rtl.synth import XC7A100T, parse_stat

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


def test_parse_stat_counts_lutram_bram_and_dsp():
    r = parse_stat(STAT)
    assert (r.lut, r.lutram, r.ff, r.bram36, r.dsp) == (63 + 178 + 128, 128, 53, 0.5, 2)


@pytest.mark.slow
def test_synth_cli(tmp_path, capsys):
    assert main(["rtl", "synth", "--hw", "atsnn28-small", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| PE (one) |" in out and "array 4x4 (extrapolated: 15 PE + 1 AT)" in out
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
