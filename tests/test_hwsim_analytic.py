"""Analytic mode fed with measured firing rates agrees with the exact mode.

Stated bound: cycles and energy per inference within 5 % (measured: digits and random
conv nets within 0.1 %, VGG16 within 2.5 %; the residual comes from events that are not
spread uniformly over input positions, which the lockstep cost depends on).
"""

import json

import numpy as np

import pytest

from atsnn.cli import main
from atsnn.compiler.pipeline import compile_model
from atsnn.hwsim.analytic import estimate, rates_from_trace
from atsnn.hwsim.datasets import digits_test_split
from atsnn.hwsim.engine import simulate
from atsnn.hwsim.policies import evaluate
from netgen import random_inputs, random_network
from atsnn.workloads.demo import MODEL

BOUND = 0.05


def _check(program, x, T):
    tr = simulate(program, x, T=T)
    exact = evaluate(tr, "fixed")
    rates, ev = rates_from_trace(tr)
    a = estimate(program, rates, T, input_events_per_timestep=ev)
    assert a.cycles_per_inference == pytest.approx(exact.cycles.mean(), rel=BOUND)
    assert a.energy_per_inference_pj == pytest.approx(exact.energy_pj.mean(), rel=BOUND)


def test_digits():
    x, _ = digits_test_split()
    _check(compile_model(MODEL), x[:100], 8)


@pytest.mark.parametrize("seed", range(4))
def test_random_conv_nets(seed):
    net = random_network(seed)
    _check(compile_model(net, input_max=1.0), random_inputs(net, 10, seed), 4)


def test_estimate_cli(tmp_path, capsys):
    prog = tmp_path / "p"
    assert main(["compile", str(MODEL), "-o", str(prog)]) == 0
    capsys.readouterr()
    assert main(["estimate", str(prog), "--rate", "0.1", "--input-events", "150", "--T", "64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["T"] == 64 and out["fps"] > 0 and out["energy_per_inference_uj"] > 0
    assert main(["estimate", str(prog), "--rate", "1.5", "--T", "4"]) == 2
    assert "--rate" in capsys.readouterr().err


@pytest.mark.parametrize("seed", range(6))
def test_table_free_statistics_equal_the_table_means(seed):
    from atsnn.hwsim.tables import build_layer_table, pass_max_sizes, synapse_stats
    p = compile_model(random_network(seed), input_max=1.0)
    for l in p.layers:
        lt = build_layer_table(l)
        assert pass_max_sizes(l) == [int(s.max()) for s in lt.pass_sizes]
        for syn, st in zip(l.synapses, lt.synapses):
            s = synapse_stats(l, syn)
            assert not s.sampled
            assert s.fanout == pytest.approx(st.fanout.mean(), rel=1e-12)
            for j in range(l.mapping.passes):
                assert s.maxconn[j] == pytest.approx(st.maxconn[j].mean(), rel=1e-12)
                assert s.maxconn_any[j] == pytest.approx((st.maxconn[j] > 0).mean(), rel=1e-12)
                assert s.reached[j] == pytest.approx(st.reached[j].mean(), rel=1e-12)


def test_sampled_statistics_stay_close_on_a_large_layer():
    """Evenly spaced samples of 64 of 9216 positions: means within 3 % of the full table's."""
    from atsnn.compiler.ir import FloatLayer, FloatNetwork, FloatSynapse
    from atsnn.hwsim.tables import build_layer_table, synapse_stats
    rng = np.random.default_rng(0)
    net = FloatNetwork(name="big", input_shape=(2, 96, 96), output="out", layers=[
        FloatLayer(name="c", neuron="if", shape=(16, 96, 96), bias=np.zeros(16), threshold=np.ones(16), v_init=np.zeros(16),
                   synapses=[FloatSynapse(source="input", op="conv2d", weight=rng.normal(0, 0.3, (16, 2, 3, 3)),
                                          input_shape=(2, 96, 96), padding=(1, 1))]),
        FloatLayer(name="out", neuron="integrator", shape=(3,), bias=np.zeros(3), threshold=np.ones(3),
                   v_init=np.zeros(3), synapses=[FloatSynapse(source="c", op="dense", flatten=True,
                                                              weight=rng.normal(0, 0.01, (3, 16 * 96 * 96)),
                                                              input_shape=(16 * 96 * 96,))])])
    p = compile_model(net, input_max=1.0)
    layer = p.layer("c")
    assert layer.mapping.passes > 1
    st = build_layer_table(layer).synapses[0]
    s = synapse_stats(layer, layer.synapses[0], max_positions=64)
    assert s.sampled and s.positions_used == 64
    assert s.fanout == pytest.approx(st.fanout.mean(), rel=0.03)
    assert sum(s.maxconn) == pytest.approx(sum(m.mean() for m in st.maxconn), rel=0.03)
    assert sum(s.reached) == pytest.approx(sum(r.mean() for r in st.reached), rel=0.03)


def test_functional_run_matches_the_simulator():
    from atsnn.hwsim.functional import run_functional
    x, _ = digits_test_split()
    p = compile_model(MODEL)
    tr = simulate(p, x[:40], T=6)
    fr = run_functional(p, x[:40], T=6, batch_size=16)
    for name, counts in fr.spike_counts.items():
        np.testing.assert_array_equal(counts, tr.layers[name]["spikes"])
    np.testing.assert_array_equal(fr.u, tr.u[:, -1])
    rates, ev = rates_from_trace(tr)
    assert fr.rates(p) == pytest.approx(rates, rel=1e-12)
    assert float(fr.input_events.mean()) == pytest.approx(ev, rel=1e-12)


def test_estimate_cli_measures_rates_from_data(tmp_path, capsys):
    prog = tmp_path / "p"
    assert main(["compile", str(MODEL), "-o", str(prog)]) == 0
    capsys.readouterr()
    assert main(["estimate", str(prog), "--data", "digits", "--samples", "20", "--measure-T", "8", "--T", "8",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    x, _ = digits_test_split()
    p = compile_model(MODEL)
    rates, ev = rates_from_trace(simulate(p, x[:20], T=8))
    assert out["rates"] == pytest.approx(rates, rel=1e-12) and out["input_events_per_timestep"] == pytest.approx(ev)
    assert main(["estimate", str(prog), "--data", "digits", "--rate", "0.1"]) == 2
    assert "only one of" in capsys.readouterr().err
    assert main(["estimate", str(prog), "--data", str(tmp_path / "none.npz")]) == 2
    assert "none.npz' does not exist" in capsys.readouterr().err
