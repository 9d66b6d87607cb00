"""`atsnn config show` and the CLI's error contract (one line, exit 2)."""

import subprocess
import sys

from atsnn.cli import main


def test_config_show_prints_both(capsys):
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "atsnn28" in out and "rows = 16" in out and "sata28-500mhz v1.0.0" in out
    assert "SATA_Sim hw_kernels.py adder(16)" in out
    assert main(["config", "show", "--hw", "atsnn28-small", "--costs", "horowitz45"]) == 0
    out = capsys.readouterr().out
    assert "rows = 4" in out and "horowitz45" in out


def test_bad_toml_file_exit_2_names_key(tmp_path, capsys):
    from atsnn.config import default_hardware, hardware_to_toml
    text = hardware_to_toml(default_hardware()).replace("data_memory_bytes = 1024", "data_memory_bytes = -5")
    p = tmp_path / "hw.toml"
    p.write_text(text)
    assert main(["config", "show", "--hw", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "pe.data_memory_bytes" in err[0]


def test_cli_entry_point_exit_code(tmp_path):
    p = tmp_path / "costs.toml"
    p.write_text("[meta]\nname = 'x'\n")
    r = subprocess.run([sys.executable, "-m", "atsnn.cli", "config", "show", "--costs", str(p)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
