"""The IF vs iLIF workload: report files, and the exactness of fixed-T results taken from a longer trace."""

import numpy as np

from atsnn.workloads.ilif_digits import measure, write_ilif_report


def test_report_files(tmp_path):
    md = write_ilif_report(tmp_path, samples=30, Ts=(2, 4))
    text = md.read_text()
    assert "| 4 | iLIF | fixed point | atsnn28 |" in text and "| 2 | IF | float |" in text
    assert (tmp_path / "ilif_digits.png").stat().st_size > 10_000
    assert (tmp_path / "atsnn28-wide32.toml").read_text().count("membrane_bits = 32") == 2
    assert len((tmp_path / "ilif_digits.csv").read_text().splitlines()) == 1 + 2 * 2 + 2 * 3


def test_if_rows_from_a_longer_trace_are_exact():
    from atsnn.compiler.pipeline import compile_model
    from atsnn.hwsim.datasets import digits_test_split
    from atsnn.hwsim.engine import simulate
    from atsnn.hwsim.policies import evaluate
    from atsnn.workloads.demo import MODEL
    rows = measure(samples=20, Ts=(2, 4))
    r2 = next(r for r in rows if r["neuron"] == "IF" and r["simulation"] == "fixed point" and r["T"] == 2)
    x, y = digits_test_split()
    tr = simulate(compile_model(MODEL), x[:20], y[:20], T=2)
    ev = evaluate(tr, "fixed")
    assert r2["cycles"] == float(ev.cycles.mean())
    assert np.isclose(r2["energy_uj"], float(ev.energy_pj.mean()) * 1e-6)
    assert r2["accuracy"] == ev.accuracy
    il = [r for r in rows if r["neuron"] == "iLIF" and r["simulation"] == "fixed point"]
    assert all(r["fire_cycle_share"] > 0 for r in il)
