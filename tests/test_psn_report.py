"""The sliding-PSN vs LIF report (workloads/psn_report.py): files, and the exactness of the numbers it
reads from one T = 8 trace. No torch needed: it runs the shipped NIR models."""

import numpy as np
import pandas as pd
import pytest

from atsnn.workloads.psn_report import MODELS_DIR, T_SEQ, measure, psn_state_rows, write_psn_report

SAMPLES = 24


@pytest.fixture(scope="module")
def tables():
    return measure(samples=SAMPLES)


def test_report_files(tmp_path):
    md = write_psn_report(tmp_path, samples=SAMPLES)
    text = md.read_text()
    for heading in ("## Accuracy", "## Energy and latency per inference", "## What the PSN costs in the PE",
                    "## Early exit on the AT unit", "## Reading the numbers"):
        assert heading in text
    assert "| PSN | fc0 | psn k=4 | 128 |" in text and "| LIF | fc0 | lif | 128 |" in text
    for png in ("accuracy_per_step.png", "energy_latency.png", "early_exit.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    acc = pd.read_csv(tmp_path / "accuracy_per_step.csv")
    assert len(acc) == 2 * T_SEQ and set(acc["neuron"]) == {"PSN", "LIF"}
    assert ((acc["fixed_accuracy"] >= 0) & (acc["fixed_accuracy"] <= 1)).all()
    pol = pd.read_csv(tmp_path / "policies.csv")
    assert set(pol["policy"]) == {"fixed", "dtsnn", "atsn"}
    assert (pd.read_csv(tmp_path / "energy_components.csv")["energy_uj"] >= 0).all()
    assert len(pd.read_csv(tmp_path / "psn_state.csv")) == 6


def test_fixed_rows_from_the_T8_trace_are_exact(tables):
    """Reading the integrator at t = 3 of the T = 8 trace is the T = 3 program: same accuracy, cycles, energy."""
    from atsnn.compiler.pipeline import compile_model
    from atsnn.hwsim.datasets import digits_sequence_split
    from atsnn.hwsim.engine import simulate
    from atsnn.hwsim.policies import evaluate
    x, y = digits_sequence_split()
    tr = simulate(compile_model(MODELS_DIR / "digits_seq_psn.nir"), x[:SAMPLES], y[:SAMPLES], T=3)
    ev = evaluate(tr, "fixed")
    row = next(r for r in tables["policies"] if r["neuron"] == "PSN" and r["params"] == "T=3")
    assert row["cycles"] == float(ev.cycles.mean())
    assert np.isclose(row["energy_uj"], float(ev.energy_pj.mean()) * 1e-6)
    assert row["accuracy"] == ev.accuracy
    acc3 = next(r for r in tables["accuracy"] if r["neuron"] == "PSN" and r["timestep"] == 3)
    assert acc3["fixed_accuracy"] == ev.accuracy


def test_energy_components_sum_to_the_fixed_T8_energy(tables):
    for n in ("PSN", "LIF"):
        total = sum(r["energy_uj"] for r in tables["energy"] if r["neuron"] == n)
        f8 = next(r for r in tables["policies"] if r["neuron"] == n and r["params"] == f"T={T_SEQ}")
        assert np.isclose(total, f8["energy_uj"])
        fixed = [r for r in tables["policies"] if r["neuron"] == n and r["policy"] == "fixed"]
        assert all(a["energy_uj"] < b["energy_uj"] for a, b in zip(fixed, fixed[1:]))


def test_layer_rows_carry_the_psn_costs(tables):
    from atsnn.config import load_hardware
    hw = load_hardware("atsnn28")
    psn = [r for r in tables["layers"] if r["kind"] == "psn"]
    lif = [r for r in tables["layers"] if r["kind"] == "lif"]
    assert len(psn) == 2 and len(lif) == 2
    for r in psn:
        assert r["k"] == 4 and r["update_cycles_per_neuron"] == hw.cycles.update + 4 * hw.cycles.psn_tap
        # (k - 1) stored currents of membrane_bits plus the accumulator
        assert r["state_bytes_per_neuron"] == -(-(3 * hw.numeric.membrane_bits + hw.numeric.accumulator_bits) // 8)
        assert r["taps_bytes_per_pe"] == 4 * hw.numeric.psn_tap_bits // 8
    assert all(r["taps_bytes_per_pe"] == 0 and r["update_cycles_per_neuron"] == hw.cycles.update for r in lif)


def test_state_rows():
    rows = {(r["neuron"], r["k"]): r for r in psn_state_rows()}
    k4, k8 = rows[("PSN", 4)], rows[("PSN", 8)]
    assert k8["state_bytes_per_neuron"] > k4["state_bytes_per_neuron"] > rows[("IF/LIF", None)]["state_bytes_per_neuron"]
    assert k8["neurons_per_pe_max"] < k4["neurons_per_pe_max"] < rows[("IF/LIF", None)]["neurons_per_pe_max"]
    assert k4["multiplies_per_update"] == 4
