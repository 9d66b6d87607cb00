"""The fixed-point program against the float SNN it was compiled from (stated tolerance)."""

import numpy as np

from atsnn.compiler.float_sim import run_float
from atsnn.compiler.nir_import import import_nir
from atsnn.compiler.pipeline import compile_model
from atsnn.hwsim.datasets import digits_test_split
from atsnn.hwsim.engine import simulate
from atsnn.workloads.demo import MODEL


def test_digits_fixed_point_tracks_float_snn():
    """Tolerance: at T = 8 the two predict the same class for >= 95 % of the test images and their
    accuracies differ by at most 1.5 points (8-bit weights, 16-bit membranes, threshold cap 1/4)."""
    net = import_nir(MODEL)
    prog = compile_model(net)
    x, y = digits_test_split()
    fl = run_float(net, x, 8)
    tr = simulate(prog, x, y, T=8)
    pf = fl.u[:, -1].argmax(axis=1)
    pq = tr.u[:, -1].argmax(axis=1)
    assert (pf == pq).mean() >= 0.95
    assert abs((pf == y).mean() - (pq == y).mean()) <= 0.015
    # the output membranes agree in real units within a few percent of their range
    real = tr.u[:, -1] * prog.output_layer.scale
    err = np.abs(real - fl.u[:, -1]).mean() / np.abs(fl.u[:, -1]).mean()
    assert err < 0.1


def test_float_sim_two_neurons_by_hand():
    from atsnn.compiler.ir import FloatLayer, FloatNetwork, FloatSynapse
    h = FloatLayer(name="h", neuron="if", shape=(2,), bias=np.zeros(2), threshold=np.array([1.0, 1.0]),
                   v_init=np.zeros(2), synapses=[FloatSynapse(source="input", op="dense",
                                                               weight=np.array([[0.6, 0.0], [1.5, 0.0]]),
                                                               input_shape=(2,))])
    o = FloatLayer(name="o", neuron="integrator", shape=(2,), bias=np.zeros(2), threshold=np.ones(2),
                   v_init=np.zeros(2), synapses=[FloatSynapse(source="h", op="dense", weight=np.eye(2),
                                                               input_shape=(2,))])
    net = FloatNetwork(name="t", input_shape=(2,), layers=[h, o], output="o")
    r = run_float(net, np.array([[1.0, 0.0]]), 3)
    # h0: 0.6, 1.2 -> spike (0.2), 0.8 ; h1: 1.5 -> spike (0.5), 2.0 -> spike (1.0), 2.5 -> spike (1.5)
    assert r.spike_counts["h"][0].tolist() == [1, 2, 1]
    assert r.u[0, -1].tolist() == [1.0, 3.0]
