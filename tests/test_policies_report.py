"""Exit policies (sweeps reuse one trace exactly), result files and the report."""

import json

import numpy as np
import pytest

from atsnn.report import build_report
from atsnn.errors import AtsnnError
from atsnn.compiler.pipeline import compile_model
from atsnn.hwsim.datasets import digits_test_split
from atsnn.hwsim.engine import simulate
from atsnn.hwsim.policies import evaluate, sweep_atsn, sweep_dtsnn
from atsnn.hwsim.results import write_run
from atsnn.workloads.demo import MODEL


@pytest.fixture(scope="module")
def trace():
    p = compile_model(MODEL)
    x, y = digits_test_split()
    return simulate(p, x[:80], y[:80], T=6, batch_size=32)


def test_fixed_runs_all_steps_and_exit_policies_save(trace):
    fx = evaluate(trace, "fixed")
    at = evaluate(trace, "atsn", cl_init=0.999, tau_cl=0.999)
    assert np.all(fx.exit_t == 6)
    assert at.avg_timestep < 6 and at.energy_pj.mean() < fx.energy_pj.mean()
    assert fx.accuracy > 0.9


def test_atsn_exit_first_and_last(trace):
    first = evaluate(trace, "atsn", cl_init=1e-6, tau_cl=1e-6)  # any confidence passes: exit at t = 1
    last = evaluate(trace, "atsn", cl_init=1.0, tau_cl=1.0)  # needs max sigma > sum: never, run to T
    assert np.all(first.exit_t == 1) and np.all(last.exit_t == 6)


def test_sweeps_equal_individual_evaluations(trace):
    ths = [0.05, 0.3, 0.9]
    for r, th in zip(sweep_dtsnn(trace, ths), ths):
        single = evaluate(trace, "dtsnn", theta=th)
        np.testing.assert_array_equal(r.exit_t, single.exit_t)
        np.testing.assert_allclose(r.energy_pj, single.energy_pj)
    grid = sweep_atsn(trace, [0.99, 0.999], [0.995, 0.999])
    assert len(grid) == 4


def test_batch_size_does_not_change_results(trace):
    p = trace.program
    x, y = digits_test_split()
    other = simulate(p, x[:80], y[:80], T=6, batch_size=7)
    np.testing.assert_array_equal(other.u, trace.u)
    for name in trace.layers:
        np.testing.assert_allclose(other.layers[name]["energy_pe_memory"], trace.layers[name]["energy_pe_memory"])


def test_run_files_and_report(trace, tmp_path):
    res = [evaluate(trace, "fixed"), evaluate(trace, "atsn", cl_init=0.999, tau_cl=0.999)]
    write_run(tmp_path / "run", trace, res, dataset="digits", sweeps=(sweep_dtsnn(trace, [0.1, 0.5]),
                                                                     sweep_atsn(trace, [0.99, 0.999], [0.99, 0.999])))
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["cost_table"].startswith("sata28-500mhz v1.0.0") and s["policies"]["atsn"]["fps"] > 0
    out = build_report(tmp_path / "run", tmp_path / "rep")
    html = (out / "index.html").read_text()
    for png in ("energy_breakdown.png", "energy_per_timestep.png", "pe_utilisation.png", "exit_histogram.png",
                "accuracy_vs_timestep.png", "cl_grid.png"):
        assert (out / png).stat().st_size > 5000 and png in html
    assert "| atsn |" in (out / "summary.md").read_text()
    with pytest.raises(AtsnnError, match="has no summary.json"):
        build_report(tmp_path, tmp_path / "x")
