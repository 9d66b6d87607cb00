"""Random small float SNNs for property tests (dense, conv, strided conv, pool, residual, transposed conv)."""

from __future__ import annotations

import numpy as np

from atsnn.program import Pool
from atsnn.compiler.ir import FloatLayer, FloatNetwork, FloatSynapse
from atsnn.compiler.nir_import import conv_out_shape


def random_network(seed: int, *, kind: str = "mixed") -> FloatNetwork:
    rng = np.random.default_rng(seed)
    c0 = int(rng.integers(1, 3))
    h = int(rng.integers(5, 9))
    in_shape = (c0, h, h)
    layers = []

    def lif_or_if():
        return ("lif", float(1 - 2.0 ** -int(rng.integers(1, 5)))) if rng.random() < 0.3 else ("if", 1.0)

    def neuron_layer(name, shape, syns):
        kind_, beta = lif_or_if()
        c = shape[0]
        thr = rng.uniform(0.5, 2.0, c)
        return FloatLayer(name=name, neuron=kind_, shape=shape, synapses=syns, bias=rng.normal(0, 0.05, c),
                          threshold=thr, v_init=thr * float(rng.choice([0.0, 0.5])), beta=beta,
                          reset=str(rng.choice(["subtract", "to_value"])), v_reset=0.0,
                          comparator=str(rng.choice([">=", ">"])))

    c1 = int(rng.integers(2, 5))
    stride = int(rng.choice([1, 2]))
    w1 = rng.normal(0, 0.6, (c1, c0, 3, 3))
    s1 = conv_out_shape(in_shape, w1.shape, (stride, stride), (1, 1))
    layers.append(neuron_layer("c1", s1, [FloatSynapse(source="input", op="conv2d", weight=w1, input_shape=in_shape,
                                                       stride=(stride, stride), padding=(1, 1))]))
    prev, pshape = "c1", s1
    if kind in ("mixed", "residual") and rng.random() < 0.5:
        w2 = rng.normal(0, 0.5, (c1, c1, 3, 3))
        wskip = np.eye(c1).reshape(c1, c1, 1, 1) * 0.8
        layers.append(neuron_layer("c2", pshape, [
            FloatSynapse(source=prev, op="conv2d", weight=w2, input_shape=pshape, padding=(1, 1)),
            FloatSynapse(source=prev, op="conv2d", weight=wskip, input_shape=pshape)]))
        prev = "c2"
    if kind == "mixed" and rng.random() < 0.4:
        wt = rng.normal(0, 0.5, (c1, 2, 2, 2))
        st = conv_out_shape(pshape, wt.shape, (2, 2), (0, 0), transposed=True)
        layers.append(neuron_layer("up", st, [FloatSynapse(source=prev, op="conv_transpose2d", weight=wt,
                                                           input_shape=pshape, stride=(2, 2))]))
        prev, pshape = "up", st
    pool = None
    fin_shape = pshape
    if pshape[1] >= 2 and rng.random() < 0.6:
        pool = Pool(kernel=(2, 2), stride=(2, 2))
        fin_shape = (pshape[0], pshape[1] // 2, pshape[2] // 2)
    n_in = int(np.prod(fin_shape))
    classes = int(rng.integers(2, 6))
    wo = rng.normal(0, 0.5, (classes, n_in))
    layers.append(FloatLayer(name="out", neuron="integrator", shape=(classes,),
                             synapses=[FloatSynapse(source=prev, op="dense", weight=wo, input_shape=(n_in,), pool=pool,
                                                    flatten=True)],
                             bias=rng.normal(0, 0.05, classes), threshold=np.ones(classes), v_init=np.zeros(classes)))
    return FloatNetwork(name=f"rand{seed}", input_shape=in_shape, layers=layers, output="out")


def random_inputs(net: FloatNetwork, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    return rng.uniform(0, 1, (n,) + tuple(net.input_shape)) * (rng.random((n,) + tuple(net.input_shape)) < 0.7)


def wide_dense_network(seed: int, *, hidden: int = 9000, encoding: str = "direct") -> FloatNetwork:
    """16 inputs -> ``hidden`` LIF neurons (beta 0.75, hard reset to ``v_reset = -0.25``) -> 10 classes.

    On a tight preset (1 KB GLB) its hidden layer needs many passes, streams its weights from DRAM, spills
    its state to DRAM and keeps its spike map in DRAM: every traffic kind of contract sec. 7 but the GLB's.
    """
    rng = np.random.default_rng(seed)
    h = FloatLayer(name="h", neuron="lif", shape=(hidden,), beta=0.75, reset="to_value", v_reset=-0.25,
                   synapses=[FloatSynapse(source="input", op="dense", weight=rng.normal(0, 0.6, (hidden, 16)),
                                          input_shape=(16,))],
                   bias=np.full(hidden, 0.02), threshold=np.ones(hidden), v_init=np.zeros(hidden))
    o = FloatLayer(name="out", neuron="integrator", shape=(10,),
                   synapses=[FloatSynapse(source="h", op="dense", weight=rng.normal(0, 0.05, (10, hidden)),
                                          input_shape=(hidden,))],
                   bias=np.zeros(10), threshold=np.ones(10), v_init=np.zeros(10))
    return FloatNetwork(name=f"wide{seed}", input_shape=(16,), layers=[h, o], output="out", input_encoding=encoding)


def shared_weight_conv_network(seed: int) -> FloatNetwork:
    """(16, 6, 6) -> 3x3 conv to 32 IF channels (hard reset to ``v_reset = 0.125``) -> 10 classes.

    Its 4.6 KB kernel does not fit a 64 B PE memory, so it is streamed; every kernel weight serves 36
    positions, so the per-timestep cap on streamed bytes (each weight once per pass, sec. 7) binds.
    """
    rng = np.random.default_rng(seed)
    c = FloatLayer(name="c", neuron="if", shape=(32, 6, 6), reset="to_value", v_reset=0.125,
                   synapses=[FloatSynapse(source="input", op="conv2d", weight=rng.normal(0, 0.3, (32, 16, 3, 3)),
                                          input_shape=(16, 6, 6), padding=(1, 1))],
                   bias=np.full(32, 0.01), threshold=np.ones(32), v_init=np.zeros(32))
    o = FloatLayer(name="out", neuron="integrator", shape=(10,),
                   synapses=[FloatSynapse(source="c", op="dense", weight=rng.normal(0, 0.05, (10, 32 * 36)),
                                          input_shape=(32 * 36,), flatten=True)],
                   bias=np.zeros(10), threshold=np.ones(10), v_init=np.zeros(10))
    return FloatNetwork(name=f"sharedconv{seed}", input_shape=(16, 6, 6), layers=[c, o], output="out")
