"""`atsnn compile` / `atsnn simulate` end to end, and their error contract (exit 2, nothing written)."""

import json

import numpy as np
import pytest

from atsnn.cli import main
from atsnn.program import load_program


def test_compile_fixture_and_simulate(tmp_path, nir_fixtures, capsys):
    prog = tmp_path / "prog"
    assert main(["compile", str(nir_fixtures / "digits_mlp_if_subtract_meta.nir"), "-o", str(prog)]) == 0
    out = capsys.readouterr().out
    assert "reset of layer if: subtract (decided by metadata)" in out and "early exit on the AT unit: yes" in out
    p = load_program(prog)
    assert p.early_exit and p.layers[-1].mapping.unit == "at"
    run = tmp_path / "run"
    assert main(["simulate", str(prog), "--T", "4", "--samples", "60", "-o", str(run), "--quiet"]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert set(s["policies"]) == {"fixed", "dtsnn", "atsn"}
    assert s["policies"]["fixed"]["accuracy"] > 0.8
    assert s["policies"]["atsn"]["avg_timestep"] <= 4


def test_compile_rejects_cubalif_without_output(tmp_path, nir_fixtures, capsys):
    out = tmp_path / "p"
    rc = main(["compile", str(nir_fixtures / "legacy_nir0.2.0_braille_cubalif_subtract.nir"), "-o", str(out)])
    assert rc == 2 and not out.exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "CubaLIF" in err and len(err.splitlines()) == 1


def test_compile_missing_file(tmp_path, capsys):
    assert main(["compile", str(tmp_path / "x.nir"), "-o", str(tmp_path / "p")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("args, msg", [
    (["--T", "0"], "--T: 0 is outside [1, 4096]"),
    (["--policy", "dtsnn", "--theta", "1.5"], "--theta: 1.5 is not a finite number in (0, 1]"),
    (["--policy", "atsn", "--cl-init", "0"], "--cl-init: 0 is not a finite number in (0, 1]"),
])
def test_simulate_bad_options(tmp_path, nir_fixtures, capsys, args, msg):
    prog = tmp_path / "prog"
    assert main(["compile", str(nir_fixtures / "digits_mlp_if_subtract_meta.nir"), "-o", str(prog)]) == 0
    capsys.readouterr()
    run = tmp_path / "run"
    assert main(["simulate", str(prog), "-o", str(run), "--quiet"] + args) == 2
    assert msg in capsys.readouterr().err and not run.exists()


def test_simulate_bad_data(tmp_path, nir_fixtures, capsys):
    prog = tmp_path / "prog"
    main(["compile", str(nir_fixtures / "digits_mlp_if_subtract_meta.nir"), "-o", str(prog)])
    np.savez(tmp_path / "d.npz", x=np.full((3, 10), np.nan))
    assert main(["simulate", str(prog), "--data", str(tmp_path / "d.npz"), "-o", str(tmp_path / "r")]) == 2
    assert "expects (64,)" in capsys.readouterr().err
    np.savez(tmp_path / "n.npz", x=np.full((3, 64), np.nan))
    assert main(["simulate", str(prog), "--data", str(tmp_path / "n.npz"), "-o", str(tmp_path / "r")]) == 2
    assert "NaN" in capsys.readouterr().err


def test_simulate_old_program_version(tmp_path, nir_fixtures, capsys):
    prog = tmp_path / "prog"
    main(["compile", str(nir_fixtures / "digits_mlp_if_subtract_meta.nir"), "-o", str(prog)])
    doc = json.loads((prog / "program.json").read_text())
    doc["format_version"] = 0
    (prog / "program.json").write_text(json.dumps(doc))
    assert main(["simulate", str(prog), "-o", str(tmp_path / "r")]) == 2
    assert "format version 0 is not supported" in capsys.readouterr().err


def test_compile_with_calibration_reports_agreement(tmp_path, capsys):
    from atsnn.workloads.demo import MODEL
    from atsnn.workloads.digits import load_split
    x, _, _, _ = load_split()
    np.savez(tmp_path / "calib.npz", x=x[:32])
    assert main(["compile", str(MODEL), "-o", str(tmp_path / "p"), "--calib", str(tmp_path / "calib.npz")]) == 0
    out = capsys.readouterr().out
    assert "float vs fixed, layer conv0: spike-count correlation" in out
    rows = load_program(tmp_path / "p").report["agreement"]
    assert rows[-1]["output_agreement"] >= 0.9
    assert 0.9 < rows[0]["spike_count_ratio"] < 1.1
