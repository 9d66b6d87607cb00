"""NIR import: every shared fixture compiles or is rejected clearly; conventions; bad inputs."""

import numpy as np
import pytest

from atsnn.errors import NirImportError
from atsnn.compiler.convert import Dense, Flatten, ReLU, convert
from atsnn.compiler.nir_export import export_nir
from atsnn.compiler.nir_import import import_nir


def test_digits_fixture_uses_metadata(nir_fixtures):
    net = import_nir(nir_fixtures / "digits_mlp_if_subtract_meta.nir")
    hidden = net.layers[0]
    assert [l.neuron for l in net.layers] == ["if", "integrator"]
    assert hidden.reset == "subtract"
    assert net.decisions["reset"][0]["rule"] == "metadata"
    np.testing.assert_allclose(hidden.v_init, 0.5 * hidden.threshold)


def test_sinabs_legacy_file_resets_by_subtraction(nir_fixtures):
    net = import_nir(nir_fixtures / "legacy_nir0.2.0_sinabs_cnn_nmnist.nir")
    assert net.input_shape == (2, 34, 34)
    assert all(d["rule"] == "writer version < 1.0.6" and d["reset_mode"] == "subtract"
               for d in net.decisions["reset"])
    assert net.layers[-1].neuron == "integrator" and net.layers[-1].extra["readout"].startswith("spike count")
    assert net.layers[2].synapses[0].pool is not None  # SumPool2d folded into the next conv's input


def test_snntorch_lif_dt_and_leak(nir_fixtures):
    net = import_nir(nir_fixtures / "snntorch1.0.0_cnn_lif_random.nir")
    assert net.decisions["dt"] == pytest.approx(1e-4)
    assert net.layers[0].neuron == "lif" and net.layers[0].beta == pytest.approx(0.9)
    # snnTorch writes v_reset = 0 for its subtract-reset Leaky: the writer's convention, not the file's
    assert net.layers[0].reset == "subtract"


def test_spikingjelly_dt_and_avgpool(nir_fixtures):
    net = import_nir(nir_fixtures / "spikingjelly2.0.0_cnn_if_hardreset_random.nir")
    assert net.decisions["dt"] == pytest.approx(1e-4)
    assert net.layers[0].shape == (4, 6, 6)
    assert net.layers[1].synapses[0].pool.kernel == (2, 2)
    # reset rule: a hard-reset IFNode written with v_reset = 0 resets to that value, unless told otherwise
    assert net.layers[0].reset == "to_value"
    assert import_nir(nir_fixtures / "spikingjelly2.0.0_cnn_if_hardreset_random.nir",
                      reset_mode="subtract").layers[0].reset == "subtract"


def test_braille_cubalif_rejected(nir_fixtures):
    with pytest.raises(NirImportError, match=r"node 'lif1\.lif' of type CubaLIF is not supported"):
        import_nir(nir_fixtures / "legacy_nir0.2.0_braille_cubalif_subtract.nir")


def _tiny_graph(**over):
    import nir
    w1 = over.get("w1", np.ones((3, 4), np.float32))
    nodes = {"in": nir.Input(input_type={"input": np.array([4])}),
             "fc": nir.Affine(weight=w1, bias=np.zeros(w1.shape[0], np.float32)),
             "lif": nir.IF(r=np.ones(3), v_threshold=over.get("thr", np.ones(3)), v_reset=np.zeros(3)),
             "fc2": nir.Affine(weight=over.get("w2", np.ones((2, 3), np.float32)), bias=np.zeros(2, np.float32)),
             "out": nir.Output(output_type={"output": np.array([2])})}
    edges = over.get("edges", [("fc2", "out"), ("in", "fc"), ("lif", "fc2"), ("fc", "lif")])
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_unordered_edges_and_arbitrary_names():
    net = import_nir(_tiny_graph())
    assert [l.name for l in net.layers] == ["lif", "out"]


@pytest.mark.parametrize("over, msg", [
    (dict(w1=np.full((3, 4), np.nan, np.float32)), r"node 'fc': weight contains NaN"),
    (dict(thr=np.zeros(3)), r"node 'lif' \(IF\): threshold must be positive"),
    (dict(w2=np.ones((2, 5), np.float32)), r"edge into node 'fc2' \(Affine\): source has shape \(3,\)"),
    (dict(edges=[("in", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "lif"), ("fc2", "out")]),
     r"recurrent cycle through nodes"),
])
def test_bad_graphs(over, msg):
    with pytest.raises(NirImportError, match=msg):
        import_nir(_tiny_graph(**over))


def test_missing_truncated_and_empty(tmp_path):
    import nir
    with pytest.raises(NirImportError, match="does not exist"):
        import_nir(tmp_path / "none.nir")
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(NirImportError, match="not a readable NIR"):
        import_nir(bad)
    with pytest.raises(NirImportError, match="the graph is empty"):
        import_nir(nir.NIRGraph(nodes={}, edges=[], type_check=False))


def test_export_import_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (50, 1, 8, 8))
    ann = [Flatten(), Dense(rng.normal(0, 0.3, (16, 64)), rng.normal(0, 0.1, 16)), ReLU(),
           Dense(rng.normal(0, 0.3, (5, 16)), rng.normal(0, 0.1, 5))]
    net = convert(ann, (1, 8, 8), x, threshold="p99.9", v_init="half")
    export_nir(net, tmp_path / "m.nir")
    back = import_nir(tmp_path / "m.nir")
    assert [l.name for l in back.layers][0] == net.layers[0].name
    for a, b in zip(net.layers, back.layers):
        np.testing.assert_allclose(b.synapses[0].weight, a.synapses[0].weight, rtol=1e-6)
        np.testing.assert_allclose(b.bias, a.bias, rtol=1e-6, atol=1e-7)
        if a.neuron != "integrator":
            np.testing.assert_allclose(b.threshold, a.threshold, rtol=1e-6)
            np.testing.assert_allclose(b.v_init, a.v_init, rtol=1e-6)
            assert b.reset == a.reset
    assert back.decisions["input_max"] == pytest.approx(1.0, abs=0.01)


def test_absurd_layer_size_is_rejected():
    import nir
    nodes = {"in": nir.Input(input_type={"input": np.array([1, 100_000, 100_000])}),
             "c": nir.Conv2d(input_shape=None, weight=np.ones((8, 1, 3, 3), np.float32), stride=1, padding=1,
                             dilation=1, groups=1, bias=np.zeros(8, np.float32)),
             "n": nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1)),
             "out": nir.Output(output_type={"output": np.array([8])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("in", "c"), ("c", "n"), ("n", "out")], type_check=False)
    with pytest.raises(NirImportError, match=r"node 'c' \(Conv2d\) output \(8, 100000, 100000\) has 80000000000 "
                                             r"neurons"):
        import_nir(g)


def _lif_graph(r: float, tau: float):
    import nir
    w = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    nodes = {"in": nir.Input(input_type={"input": np.array([4])}),
             "fc": nir.Affine(weight=w, bias=np.zeros(3, np.float32)),
             "lif": nir.LIF(tau=np.full(3, tau), r=np.full(3, r), v_leak=np.zeros(3),
                            v_threshold=np.ones(3), v_reset=np.zeros(3)),
             "fc2": nir.Affine(weight=np.ones((2, 3), np.float32), bias=np.zeros(2, np.float32)),
             "out": nir.Output(output_type={"output": np.array([2])})}
    edges = [("in", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), w


@pytest.mark.parametrize("version, mode, rule", [
    ("1.0.5", "subtract", "writer version < 1.0.6"),
    ("1.0.6", "to_value", "default for LIF"),
])
def test_writer_version_boundary_decides_the_reset(tmp_path, version, mode, rule):
    """Files written before nir 1.0.6 reset LIF by subtraction; 1.0.6 itself is the new rule."""
    import h5py
    import nir
    graph, _ = _lif_graph(r=10.0, tau=1e-2)
    path = tmp_path / "lif.nir"
    nir.write(path, graph)
    with h5py.File(path, "r+") as f:
        if "version" in f:
            del f["version"]
        f["version"] = version
    net = import_nir(path, dt=1e-3)
    assert net.decisions["reset"][0] == {"layer": "lif", "reset_mode": mode, "rule": rule}
    assert net.layers[0].reset == mode


def test_lif_input_gain_is_dt_r_over_tau():
    """LIF: the synaptic weight is scaled by dt*r/tau (here 1e-3 * 20 / 1e-2 = 2), beta = 0.9."""
    graph, w = _lif_graph(r=20.0, tau=1e-2)
    net = import_nir(graph, dt=1e-3)
    lif = net.layers[0]
    assert lif.beta == pytest.approx(0.9)
    np.testing.assert_allclose(lif.synapses[0].weight, 2.0 * w, rtol=1e-6)
