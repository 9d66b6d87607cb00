"""The PyTorch front end (compiler/torch_frontend.py): torch ANN -> convert specs -> float SNN."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from atsnn.errors import ConversionError  # noqa: E402
from atsnn.compiler.convert import AvgPool, BatchNorm, Clip, Conv, Dense, Flatten, convert  # noqa: E402
from atsnn.compiler.float_sim import run_float  # noqa: E402
from atsnn.compiler.torch_frontend import ClipReLU, ann_from_torch, convert_torch  # noqa: E402

pytestmark = pytest.mark.torch


def _cnn():
    """Nested Sequentials, BatchNorm after a biased and an unbiased conv, three ClipReLUs, Dropout."""
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), ClipReLU(0.4), nn.AvgPool2d(2)),
        nn.Conv2d(6, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), ClipReLU(0.5), nn.AvgPool2d(2),
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(32, 16), ClipReLU(0.3), nn.Linear(16, 5))
    with torch.no_grad():
        for bn in (m[0][1], m[2]):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.8, 1.2)
            bn.bias.uniform_(0.0, 0.3)
    return m.eval()


def test_torch_cnn_float_snn_matches_ann_at_large_T():
    """Tolerance: at T = 256 the float SNN's output rate ``u_T / T`` is within 1 % of the largest ANN
    logit magnitude of the torch ANN output (element-wise, all 200 inputs; the IF quantisation error
    shrinks as 1/T), and the predicted class agrees on >= 99 % of the inputs."""
    m = _cnn()
    x = torch.rand(200, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = m(x).double().numpy()
    # some activations really are clipped, so the test exercises the trained-lambda thresholds
    with torch.no_grad():
        z = m[0][1](m[0][0](x))
        assert (z > 0.4).float().mean() > 0.02
    net = convert_torch(m, (1, 8, 8), x, threshold="clip", v_init="half", name="t")
    assert [l.neuron for l in net.layers] == ["if", "if", "if", "integrator"]
    assert [float(l.threshold[0]) for l in net.layers[:3]] == pytest.approx([0.4, 0.5, 0.3])
    T = 256
    rate = run_float(net, x.numpy(), T).u[:, -1] / T
    assert np.abs(rate - ref).max() <= 0.01 * np.abs(ref).max()
    assert (rate.argmax(axis=1) == ref.argmax(axis=1)).mean() >= 0.99


def _numpy_specs(m):
    """The same network written by hand as numpy specs (weights copied from the torch module)."""
    f = lambda t: t.detach().numpy().astype(np.float64)  # noqa: E731
    bn = lambda b: BatchNorm(f(b.weight), f(b.bias), f(b.running_mean), f(b.running_var), b.eps)  # noqa: E731
    return [Conv(f(m[0][0].weight), f(m[0][0].bias), stride=1, padding=1), bn(m[0][1]),
            Clip(float(m[0][2].lam.detach())), AvgPool(2),
            Conv(f(m[1].weight), None, padding=1), bn(m[2]), Clip(float(m[3].lam.detach())), AvgPool(2), Flatten(),
            Dense(f(m[7].weight), f(m[7].bias)), Clip(float(m[8].lam.detach())), Dense(f(m[9].weight), f(m[9].bias))]


@pytest.mark.parametrize("threshold, v_init", [("clip", "half"), ("p99.9", "zero"), ("channel-p99.9", "half")])
def test_torch_and_numpy_paths_give_identical_networks(threshold, v_init):
    m = _cnn()
    x = np.random.default_rng(2).random((64, 1, 8, 8))
    a = convert_torch(m, (1, 8, 8), x, threshold=threshold, v_init=v_init, name="n")
    b = convert(_numpy_specs(m), (1, 8, 8), x, threshold=threshold, v_init=v_init, name="n")
    assert [l.name for l in a.layers] == [l.name for l in b.layers] and a.output == b.output
    for la, lb in zip(a.layers, b.layers):
        assert la.neuron == lb.neuron and la.shape == lb.shape and la.reset == lb.reset
        for key in ("bias", "threshold", "v_init"):
            assert np.array_equal(getattr(la, key), getattr(lb, key)), (la.name, key)
        assert len(la.synapses) == len(lb.synapses)
        for sa, sb in zip(la.synapses, lb.synapses):
            assert np.array_equal(sa.weight, sb.weight), la.name
            assert (sa.source, sa.op, sa.input_shape, sa.stride, sa.padding, sa.pool, sa.flatten) == \
                   (sb.source, sb.op, sb.input_shape, sb.stride, sb.padding, sb.pool, sb.flatten)
    assert a.decisions == b.decisions


def test_specs_of_each_module():
    m = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding="valid"), nn.ReLU(inplace=True),
                      nn.Conv2d(3, 3, 3, padding="same"), nn.BatchNorm2d(3, affine=False), ClipReLU(1.5),
                      nn.AvgPool2d(2, stride=1), nn.Identity(), nn.Flatten(), nn.Linear(27, 4),
                      nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    specs = ann_from_torch(m)
    kinds = [type(s).__name__ for s in specs]
    assert kinds == ["Conv", "ReLU", "Conv", "BatchNorm", "Clip", "AvgPool", "Flatten", "Dense", "BatchNorm",
                     "ReLU", "Dense"]
    assert (specs[0].stride, specs[0].padding, specs[2].padding) == (2, 0, 1)
    assert np.array_equal(specs[3].gamma, np.ones(3)) and np.array_equal(specs[3].beta, np.zeros(3))
    assert specs[4].lam == 1.5 and (specs[5].kernel, specs[5].stride) == (2, 1)
    assert specs[0].weight.dtype == np.float64 and specs[0].weight.shape == (3, 2, 3, 3)
    net = convert_torch(m.eval(), (2, 9, 9), torch.rand(16, 2, 9, 9), threshold="max", v_init="zero")
    assert [l.shape for l in net.layers] == [(3, 4, 4), (3, 4, 4), (4,), (2,)]


class _Custom(nn.Module):
    def forward(self, x):
        return x * 2


class _MySeq(nn.Sequential):
    def forward(self, x):
        return super().forward(x) + 1


@pytest.mark.parametrize("bad, qualname, kind", [
    (nn.MaxPool2d(2), "body.1", "MaxPool2d"),
    (nn.GELU(), "body.1", "GELU"),
    (_Custom(), "body.1", "_Custom"),
    (_MySeq(nn.ReLU()), "body.1", "_MySeq"),
    (nn.Conv2d(4, 4, 3, padding=1, groups=2), "body.1", "Conv2d"),
    (nn.Conv2d(4, 4, 3, padding=2, dilation=2), "body.1", "Conv2d"),
    (nn.Conv2d(4, 4, 3, stride=(1, 2)), "body.1", "Conv2d"),
    (nn.Conv2d(4, 4, 3, padding=(0, 1)), "body.1", "Conv2d"),
    (nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), "body.1", "Conv2d"),
    (nn.AvgPool2d(2, padding=1), "body.1", "AvgPool2d"),
    (nn.AvgPool2d(2, ceil_mode=True), "body.1", "AvgPool2d"),
    (nn.Flatten(start_dim=2), "body.1", "Flatten"),
])
def test_unsupported_module_is_rejected_by_name(bad, qualname, kind):
    m = nn.Sequential()
    m.add_module("stem", nn.Conv2d(1, 4, 3, padding=1))
    m.add_module("body", nn.Sequential(nn.ReLU(), bad))
    with pytest.raises(ConversionError) as ei:
        ann_from_torch(m)
    msg = str(ei.value)
    assert f"'{qualname}'" in msg and kind in msg


def test_unsupported_root_and_non_module():
    with pytest.raises(ConversionError, match=r"'<root>' \(GELU\)"):
        ann_from_torch(nn.GELU())
    with pytest.raises(ConversionError, match="expects a torch.nn.Module"):
        ann_from_torch([nn.ReLU()])


def test_clip_relu_forward_and_lambda_gradient():
    act = ClipReLU(1.0)
    x = torch.tensor([-1.0, 0.5, 2.0, 3.0], requires_grad=True)
    y = act(x)
    assert y.tolist() == [0.0, 0.5, 1.0, 1.0]
    y.sum().backward()
    assert float(act.lam.grad) == 2.0  # two inputs above lambda
    assert x.grad.tolist() == [0.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        ClipReLU(0.0)


# ---------------------------------------------------------------- ATSN training (workloads/train_atsn.py)

def test_importance_weights_and_loss_follow_eq_11_to_13():
    from atsnn.workloads.train_atsn import atsn_loss, importance_weights

    w = importance_weights(4)
    i = np.array([1 + np.exp(-1 - (t + 1) / 4) for t in (1, 2, 3, 4)])
    assert np.allclose(w, i / i.sum()) and np.all(np.diff(w) < 0) and w.sum() == pytest.approx(1.0)
    u = torch.randn(4, 5, 10, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 9, 2, 2])
    logp = torch.log_softmax(u, dim=2)[:, torch.arange(5), y]  # (T, B): log o_y^t
    expect = -(torch.as_tensor(w, dtype=u.dtype)[:, None] * logp).sum() / 5
    assert float(atsn_loss(u, y, "imp")) == pytest.approx(float(expect), rel=1e-6)
    assert float(atsn_loss(u, y, "ce")) == pytest.approx(float(-logp[-1].mean()), rel=1e-6)
    assert float(atsn_loss(u, y, "uniform")) == pytest.approx(float(-logp.mean()), rel=1e-6)
    with pytest.raises(ValueError):
        atsn_loss(u, y, "mse")


def test_training_snn_is_the_converted_snn():
    """The torch SNN used for training and the converted float SNN give the same output membranes
    (up to float32 rounding) at every timestep, so the trained network is the deployed one."""
    from atsnn.workloads.digits import load_split
    from atsnn.workloads.train_atsn import snn_forward, train_snn

    xtr, ytr, xte, _ = load_split()
    r = train_snn(xtr[:128], ytr[:128], loss="imp", epochs=1)
    net = convert_torch(r.model, (1, 8, 8), xtr[:128], threshold="clip", v_init="half")
    with torch.no_grad():
        u = snn_forward(r.model, torch.as_tensor(xte[:200], dtype=torch.float32), 6).numpy()
    f = run_float(net, xte[:200], 6).u.transpose(1, 0, 2)
    assert np.abs(u - f).max() <= 1e-4 * max(1.0, np.abs(f).max())


def test_atsn_training_end_to_end_short(tmp_path):
    """Two epochs on 128 images through the same path as ``python -m atsnn.workloads.train_atsn``: trains
    the L_imp model and the CE baseline, writes the NIR and the JSON (accuracy is not checked)."""
    import json

    from atsnn.compiler.nir_import import import_nir
    from atsnn.workloads.train_atsn import EVAL_TS, NAME, build_atsn

    meta = build_atsn(tmp_path, epochs=2, n_train=128, ablation=False)
    assert (tmp_path / f"{NAME}.nir").is_file()
    assert json.loads((tmp_path / f"{NAME}.json").read_text()) == meta
    for res in (meta, meta["baseline_ce"]):
        assert len(res["train_loss_first_last"]) == 2 and np.all(np.isfinite(res["train_loss_first_last"]))
        assert set(res["snn_float_test_accuracy"]) == {str(T) for T in EVAL_TS}
        assert all(0.0 <= a <= 1.0 for a in res["snn_float_test_accuracy"].values())
        assert len(res["clip_lambdas"]) == 2 and min(res["clip_lambdas"]) > 0
    assert meta["hyperparameters"]["epochs"] == 2 and meta["hyperparameters"]["n_train"] == 128
    net = import_nir(tmp_path / f"{NAME}.nir")
    assert [l.neuron for l in net.layers][-1] == "integrator"
    assert np.allclose([l.threshold[0] for l in net.layers[:2]], meta["clip_lambdas"])
