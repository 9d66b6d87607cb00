"""Torch SNN front end (compiler/torch_frontend.py): SlidingPSN / LIFNeuron math, snn_from_torch structure,
and agreement of the exported network's float SNN with the torch module."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from atsnn.errors import ConversionError  # noqa: E402
from atsnn.compiler.float_sim import run_float  # noqa: E402
from atsnn.compiler.torch_frontend import LIFNeuron, SlidingPSN, psn_init_taps, sequence_forward, snn_from_torch  # noqa: E402

pytestmark = pytest.mark.torch


def _psn_loop(x: np.ndarray, taps, v_th: float) -> np.ndarray:
    """Eq. 14-15 written out: H[t] = sum_i W_i X[t-k+1+i] (X[j] = 0 before the first step), S = H >= V_th."""
    T, k = x.shape[0], len(taps)
    s = np.zeros_like(x)
    for t in range(T):
        h = np.zeros_like(x[0])
        for i in range(k):
            j = t - k + 1 + i
            if j >= 0:
                h = h + taps[i] * x[j]
        s[t] = h >= v_th
    return s


def test_eq17_init():
    assert list(psn_init_taps(1)) == [1.0]
    assert list(psn_init_taps(4)) == [0.125, 0.25, 0.5, 1.0]
    m = SlidingPSN(8)
    assert m.taps.detach().numpy().tolist() == [2.0 ** (i - 7) for i in range(8)]
    assert float(m.threshold.detach()) == 1.0 and m.taps.requires_grad and m.threshold.requires_grad
    with pytest.raises(ValueError, match="k must be a positive integer"):
        SlidingPSN(0)


@pytest.mark.parametrize("k, T", [(1, 5), (3, 6), (4, 4), (8, 5)])
def test_sliding_psn_matches_hand_loop(k, T):
    """k > T too: taps beyond the sequence start see zero padding."""
    g = torch.Generator().manual_seed(k * 10 + T)
    m = SlidingPSN(k, threshold=0.7)
    with torch.no_grad():
        m.taps.copy_(torch.randn(k, generator=g, dtype=torch.float64).float())
    x = torch.randn(T, 3, 5, generator=g, dtype=torch.float64)
    h_ref = np.stack([sum(float(m.taps[i].detach()) * x[t - k + 1 + i].numpy() for i in range(k) if t - k + 1 + i >= 0)
                      for t in range(T)])
    assert np.allclose(m.hidden(x).detach().numpy(), h_ref, atol=1e-6)
    s = m(x).detach().numpy()
    # H within float rounding of the threshold could flip; the random data keeps away from it
    assert np.abs(h_ref - 0.7).min() > 1e-5
    assert np.array_equal(s, _psn_loop(x.numpy(), m.taps.detach().numpy().astype(np.float64), 0.7))


def test_surrogate_gradient_reaches_taps_threshold_and_input():
    m = SlidingPSN(3)
    x = torch.rand(6, 4, 7, requires_grad=True)
    m(x).sum().backward()
    for g in (m.taps.grad, m.threshold.grad, x.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    # arctan surrogate, alpha = 4: d S / d H = 2 at H = V_th
    h = torch.tensor([[[1.0]]], requires_grad=True)
    m1 = SlidingPSN(1)
    m1(h).sum().backward()
    assert float(h.grad) == pytest.approx(2.0)


def test_lif_neuron_matches_hand_loop():
    x = torch.rand(7, 2, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 1.2
    m = LIFNeuron(2, threshold=0.9)
    beta = 0.75
    v = np.zeros((2, 6))
    ref = []
    for t in range(7):
        v = beta * v + x[t].numpy()
        s = (v >= 0.9).astype(float)
        v = v - 0.9 * s
        ref.append(s)
    out = m(x).detach().numpy()
    assert m.beta == beta and np.array_equal(out, np.stack(ref)) and out.sum() > 0
    assert LIFNeuron(0).beta == 1.0
    assert not LIFNeuron(1, learn_threshold=False).threshold.requires_grad


def _net(kind="psn"):
    torch.manual_seed(0)
    n1 = SlidingPSN(4, threshold=0.6) if kind == "psn" else LIFNeuron(1, threshold=0.6)
    m = nn.Sequential(nn.Linear(8, 24), n1, nn.Dropout(0.1),
                      nn.Sequential(nn.Linear(24, 16), SlidingPSN(2, threshold=0.5)), nn.Linear(16, 10))
    with torch.no_grad():
        m[0].weight.mul_(2.0)
        m[1].threshold.fill_(0.6)
        if kind == "psn":
            m[1].taps.copy_(torch.tensor([0.1, -0.3, 0.6, 1.1]))
    return m.eval()


def test_front_end_structure():
    m = _net("psn")
    net = snn_from_torch(m, (8,), name="seq", input_max=1.0)
    assert net.input_encoding == "sequence" and net.input_shape == (8,) and net.name == "seq"
    assert [(l.name, l.neuron, l.shape) for l in net.layers] == [("fc0", "psn", (24,)), ("fc1", "psn", (16,)),
                                                                 ("fc2", "integrator", (10,))]
    l0, l1, out = net.layers
    assert net.output == out.name and net.decisions["input_max"] == 1.0
    assert l0.extra["psn"]["mode"] == "sliding" and l0.extra["psn"]["k"] == 4
    assert l0.extra["psn"]["taps"] == pytest.approx([0.1, -0.3, 0.6, 1.1])
    assert l1.extra["psn"]["taps"] == [0.5, 1.0]
    assert np.allclose(l0.threshold, 0.6) and l0.threshold.shape == (24,) and np.allclose(l1.threshold, 0.5)
    assert [s.source for l in net.layers for s in l.synapses] == ["input", l0.name, l1.name]
    assert np.array_equal(l0.synapses[0].weight, m[0].weight.detach().double().numpy())
    assert np.array_equal(out.bias, m[4].bias.detach().double().numpy())
    lif = snn_from_torch(_net("lif"), (8,))
    assert lif.layers[0].neuron == "lif" and lif.layers[0].beta == 0.5 and lif.layers[0].reset == "subtract"
    assert np.array_equal(lif.layers[0].v_init, np.zeros(24))


def test_front_end_conv_and_flatten():
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), LIFNeuron(0), nn.Flatten(), nn.Linear(4 * 4 * 4, 5),
                      SlidingPSN(2), nn.Linear(5, 3))
    net = snn_from_torch(m, (1, 4, 4))
    assert [l.neuron for l in net.layers] == ["if", "psn", "integrator"]
    assert net.layers[0].shape == (4, 4, 4) and net.layers[0].synapses[0].op == "conv2d"
    assert net.layers[1].synapses[0].flatten and net.layers[1].synapses[0].input_shape == (64,)
    x = torch.rand(5, 3, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 2
    with torch.no_grad():
        ref = sequence_forward(m, x).numpy()
    u = run_float(net, x.permute(1, 0, 2, 3, 4).numpy(), 5).u
    assert np.allclose(u, ref.transpose(1, 0, 2), atol=1e-4)


class _Custom(nn.Module):
    def forward(self, x):
        return x


@pytest.mark.parametrize("mods, pattern", [
    ([nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2)], r"'1' \(ReLU\) is not supported"),
    ([nn.Linear(8, 4), _Custom(), nn.Linear(4, 2)], r"'1' \(_Custom\) is not supported"),
    ([nn.Linear(8, 4), nn.Linear(4, 2)], r"'1' \(Linear\) follows the weighted layer '0'"),
    ([SlidingPSN(2), nn.Linear(8, 2)], r"'0' \(SlidingPSN\): a neuron layer needs a weighted layer"),
    ([nn.Linear(8, 4), SlidingPSN(2)], "must end with a weighted readout"),
    ([nn.Linear(7, 4), SlidingPSN(2), nn.Linear(4, 2)], r"'0' \(Linear\): expects 7 input features"),
    ([nn.Linear(8, 2)], "no neuron layer"),
])
def test_unsupported_structure_is_rejected_by_name(mods, pattern):
    with pytest.raises(ConversionError, match=pattern):
        snn_from_torch(nn.Sequential(*mods), (8,))


def test_non_positive_threshold_is_rejected():
    m = nn.Sequential(nn.Linear(8, 4), SlidingPSN(2), nn.Linear(4, 2))
    with torch.no_grad():
        m[1].threshold.fill_(-0.1)
    with pytest.raises(ConversionError, match=r"'1' \(SlidingPSN\): threshold must be positive"):
        snn_from_torch(m, (8,))


@pytest.mark.parametrize("kind", ["psn", "lif"])
def test_float_snn_of_export_matches_torch(kind):
    """Tolerance: the output integrator of atsnn.compiler.float_sim.run_float (float32, loop over the history)
    equals the torch module's summed readout (float32, banded-matrix FIR) within 1e-4 absolute at
    every step on at least 99 % of 300 random sequences (a hidden H within float32 rounding of V_th may
    fire in one and not in the other), and the class after T = 8 agrees on at least 99 %."""
    m = _net(kind)
    x = torch.rand(8, 300, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = sequence_forward(m, x).numpy().transpose(1, 0, 2)  # (B, T, C)
        spikes = m[1](m[0](x)).mean()
    assert 0.05 < float(spikes) < 0.95  # the hidden layer really fires and really stays silent
    net = snn_from_torch(m, (8,))
    u = run_float(net, x.permute(1, 0, 2).numpy(), 8).u
    close = np.all(np.abs(u - ref) <= 1e-4, axis=(1, 2))
    assert close.mean() >= 0.99
    assert (u[:, -1].argmax(axis=1) == ref[:, -1].argmax(axis=1)).mean() >= 0.99


def test_nir_round_trip_keeps_psn(tmp_path):
    from atsnn.compiler.nir_export import export_nir
    from atsnn.compiler.nir_import import import_nir
    net = snn_from_torch(_net("psn"), (8,))
    export_nir(net, tmp_path / "m.nir")
    back = import_nir(tmp_path / "m.nir")
    assert back.input_encoding == "sequence"
    assert [l.neuron for l in back.layers] == ["psn", "psn", "integrator"]
    assert back.layers[0].extra["psn"]["taps"] == pytest.approx(net.layers[0].extra["psn"]["taps"])
    x = np.random.default_rng(0).random((50, 8, 8)).astype(np.float32)
    assert np.allclose(run_float(back, x, 8).u, run_float(net, x, 8).u, atol=1e-5)


def test_training_script_is_deterministic_and_exports(tmp_path):
    """atsnn.workloads.train_psn on a tiny budget: both models written, NIR bytes identical on a rerun, the shipped
    float SNN agrees with torch, and the JSON carries the accuracies per step."""
    import json

    from atsnn.workloads.train_psn import build_psn_models
    a = build_psn_models(tmp_path / "a", epochs=2, n_train=96, sweep=False)
    build_psn_models(tmp_path / "b", epochs=2, n_train=96, sweep=False)
    for name in ("digits_seq_psn", "digits_seq_lif"):
        assert (tmp_path / "a" / f"{name}.nir").read_bytes() == (tmp_path / "b" / f"{name}.nir").read_bytes()
        meta = json.loads((tmp_path / "a" / f"{name}.json").read_text())
        assert len(meta["snn_float_test_accuracy_per_step"]) == 8 and meta["torch_float_class_agreement"] >= 0.99
    assert a["psn"]["k"] == 4 and list(a["psn"]["k_sweep"]) == ["4"] and a["lif"]["leak_shift"] == 1
