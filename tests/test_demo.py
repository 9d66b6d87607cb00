"""`atsnn demo` end to end: program, tables, report and Verilog, with real figures printed."""

import json

from atsnn.cli import main


def test_demo_writes_everything(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "digits_cnn_clip" in out and "atsn" in out and "verilog: " in out
    d = tmp_path / "demo"
    s = json.loads((d / "run" / "summary.json").read_text())
    assert s["samples"] == 540 and s["policies"]["fixed"]["accuracy"] > 0.93
    assert s["policies"]["atsn"]["avg_timestep"] < s["timesteps_max"]
    assert (d / "report" / "index.html").is_file() and (d / "run" / "sweep_atsn.csv").is_file()
    assert {p.name for p in (d / "verilog").glob("*.v")} == {"atsnn_pe.v", "atsnn_pe_ilif.v", "atsnn_pe_psn.v", "atsnn_at.v"}
