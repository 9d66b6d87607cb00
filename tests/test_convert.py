"""ANN -> SNN conversion: BN folding, threshold methods, initial membrane (0, 0.5*theta, LMPC)."""

import numpy as np
import pytest

from atsnn.errors import ConversionError
from atsnn.compiler.convert import (AvgPool, BatchNorm, Clip, Conv, Dense, Flatten, ReLU, Route, ann_forward, _blocks, convert,
                              fold_batchnorm)
from atsnn.compiler.float_sim import run_float


def test_bn_folding_is_exact():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    bn = BatchNorm(gamma=rng.uniform(0.5, 2, 4), beta=rng.normal(size=4), mean=rng.normal(size=4),
                   var=rng.uniform(0.5, 2, 4))
    x = rng.uniform(0, 1, (5, 3, 6, 6))
    ref = ann_forward(_blocks([Conv(w, b, padding=1), BatchNorm(**vars(bn)), ReLU(), Flatten(),
                               Dense(np.eye(4 * 36), np.zeros(4 * 36))]), x)[0]
    w2, b2 = fold_batchnorm(w, b, bn)
    from atsnn.hwsim.ops import conv2d
    z = conv2d(x, w, (1, 1), (1, 1)).astype(np.float64) + b.reshape(1, -1, 1, 1)
    manual = np.maximum((z - bn.mean.reshape(1, -1, 1, 1)) / np.sqrt(bn.var.reshape(1, -1, 1, 1) + bn.eps)
                        * bn.gamma.reshape(1, -1, 1, 1) + bn.beta.reshape(1, -1, 1, 1), 0)
    np.testing.assert_allclose(ref, manual, rtol=1e-5, atol=1e-5)
    folded = np.maximum(conv2d(x, w2, (1, 1), (1, 1)).astype(np.float64) + b2.reshape(1, -1, 1, 1), 0)
    np.testing.assert_allclose(folded, manual, rtol=1e-5, atol=1e-5)


def _cnn(rng):
    return [Conv(rng.normal(0, 0.5, (4, 1, 3, 3)), rng.normal(0, 0.05, 4), padding=1), ReLU(), AvgPool(2), Flatten(),
            Dense(rng.normal(0, 0.3, (3, 64)), np.zeros(3))]


@pytest.mark.parametrize("method", ["max", "p99.9", "channel-p99.9"])
def test_threshold_methods(method):
    rng = np.random.default_rng(1)
    ann = _cnn(rng)
    x = rng.uniform(0, 1, (40, 1, 8, 8))
    net = convert(ann, (1, 8, 8), x, threshold=method)
    act = ann_forward(_blocks(ann), x)[0]
    thr = net.layers[0].threshold
    if method == "max":
        assert np.allclose(thr, act.max())
    elif method == "p99.9":
        assert np.allclose(thr, np.percentile(act[act > 0], 99.9))
    else:
        per = [np.percentile(a[a > 0], 99.9) for a in np.moveaxis(act, 1, 0).reshape(4, -1)]
        assert np.allclose(thr, per)
    assert net.layers[1].synapses[0].pool.kernel == (2, 2)


def test_clip_thresholds_use_trained_lambda():
    rng = np.random.default_rng(2)
    ann = [Flatten(), Dense(rng.normal(size=(5, 4)), np.zeros(5)), Clip(1.7), Dense(rng.normal(size=(2, 5)))]
    net = convert(ann, (4,), rng.uniform(0, 1, (10, 4)), threshold="clip")
    assert np.allclose(net.layers[0].threshold, 1.7)
    with pytest.raises(ConversionError, match="needs Clip activations"):
        convert([Flatten(), Dense(np.ones((2, 4))), ReLU(), Dense(np.ones((2, 2)))], (4,), np.ones((3, 4)),
                threshold="clip")


def test_converted_snn_approximates_the_ann():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (60, 1, 8, 8))
    ann = _cnn(rng)
    net = convert(ann, (1, 8, 8), x, threshold="p99.9", v_init="half")
    logits = ann_forward(_blocks(ann), x)[-1]
    u = run_float(net, x, 64).u[:, -1] / 64
    assert (u.argmax(axis=1) == logits.argmax(axis=1)).mean() >= 0.9


def test_lmpc_reduces_conversion_error_against_zero_init():
    from atsnn.workloads.digits import load_split
    from atsnn.workloads.train_digits import mlp_spec, train_mlp
    xtr, _, xte, yte = load_split()
    clf, _ = train_mlp()
    acc = {}
    for v in ("zero", "lmpc"):
        net = convert(mlp_spec(clf), (1, 8, 8), xtr, threshold="p99.9", v_init=v)
        acc[v] = (run_float(net, xte, 2).u[:, -1].argmax(axis=1) == yte).mean()
    assert acc["lmpc"] > acc["zero"] + 0.02


def test_bad_ann_specs():
    with pytest.raises(ConversionError, match="weight contains NaN"):
        convert([Flatten(), Dense(np.full((2, 4), np.nan)), ReLU(), Dense(np.ones((2, 2)))], (4,), np.ones((3, 4)))
    with pytest.raises(ConversionError, match="last ANN layer must be"):
        convert([Flatten(), Dense(np.ones((2, 4))), ReLU()], (4,), np.ones((3, 4)))
    with pytest.raises(ConversionError, match="unknown threshold method"):
        convert([Flatten(), Dense(np.ones((2, 4)))], (4,), np.ones((3, 4)), threshold="p50")


def test_residual_blocks_convert_faithfully():
    from atsnn.compiler.convert import BatchNorm, Residual
    rng = np.random.default_rng(0)

    def conv(co, ci, k=3, s=1, p=1):
        return Conv(rng.normal(0, np.sqrt(2 / (ci * k * k)), (co, ci, k, k)), rng.normal(0, 0.01, co), stride=s,
                    padding=p)

    def bn(c):
        return BatchNorm(np.ones(c), np.zeros(c), np.zeros(c), np.ones(c))

    ann = [conv(8, 1), bn(8), ReLU(), Residual([conv(8, 8), bn(8), ReLU(), conv(8, 8), bn(8)]),
           Residual([conv(16, 8, s=2), bn(16), ReLU(), conv(16, 16), bn(16)], [conv(16, 8, 1, 2, 0), bn(16)]),
           AvgPool(4), Flatten(), Dense(rng.normal(0, 0.3, (5, 16)))]
    x = rng.uniform(0, 1, (50, 1, 8, 8))
    net = convert(ann, (1, 8, 8), x)
    assert [len(l.synapses) for l in net.layers] == [1, 1, 2, 1, 2, 1]
    assert net.layers[2].synapses[1].source == "conv0"  # identity shortcut from the block input
    logits = ann_forward(_blocks(ann), x)[-1]
    u = run_float(net, x, 64).u[:, -1] / 64
    assert (u.argmax(axis=1) == logits.argmax(axis=1)).mean() >= 0.95
    with pytest.raises(ConversionError, match="identity shortcut has 8 channels"):
        convert([conv(8, 1), ReLU(), Residual([conv(16, 8), ReLU(), conv(16, 16)]), Flatten(),
                 Dense(np.ones((2, 1024)))], (1, 8, 8), x)


def _yolo_like(rng):
    """A miniature two-head detector: stride-2 conv, a head, a route, a transposed conv and a concat."""
    from atsnn.compiler.convert import Concat, ConvTranspose, Route, Tap

    def conv(co, ci, k=3, s=1, name=None):
        return Conv(rng.normal(0, np.sqrt(2 / (ci * k * k)), (co, ci, k, k)), rng.normal(0, 0.01, co), stride=s,
                    padding=k // 2, name=name)

    return [conv(8, 1, name="a"), ReLU(), Tap("a"), conv(8, 8, s=2), ReLU(), Tap("b"),
            conv(4, 8, k=1, name="head1"), Route("b"),
            ConvTranspose(rng.normal(0, 0.3, (8, 6, 3, 3)), None, stride=2, padding=1, output_padding=1, name="up"),
            ReLU(), Concat("a"), conv(5, 14, k=1, name="mix"), ReLU(), conv(3, 5, k=1, name="head2")]


def test_multi_branch_detection_graph_converts_faithfully():
    rng = np.random.default_rng(1)
    ann = _yolo_like(rng)
    x = rng.uniform(0, 1, (20, 1, 8, 8))
    net = convert(ann, (1, 8, 8), x, threshold="channel-p99.9")
    assert [(l.name, l.neuron, tuple(l.shape)) for l in net.layers] == [
        ("a", "if", (8, 8, 8)), ("conv1", "if", (8, 4, 4)), ("head1", "integrator", (4, 4, 4)),
        ("up", "if", (6, 8, 8)), ("mix", "if", (5, 8, 8)), ("head2", "integrator", (3, 8, 8))]
    assert net.output == "head2" and net.layer("head1").extra["head"]
    assert [(s.source, s.weight.shape[1]) for s in net.layer("mix").synapses] == [("up", 6), ("a", 8)]
    acts = ann_forward(_blocks(ann), x)
    T = 256
    run = run_float(net, x, T)
    # the primary head's average membrane follows the ANN's pre-activation (conversion error shrinks with T)
    err = np.abs(run.u[:, -1] / T - acts[-1].reshape(len(x), -1)).mean() / np.abs(acts[-1]).mean()
    assert err < 0.1
    with pytest.raises(ConversionError, match="refers to 'c', which no earlier Tap names"):
        convert(ann[:7] + [Route("c")] + ann[8:], (1, 8, 8), x)
    with pytest.raises(ConversionError, match="expects 9 input channels, the Concat of its inputs gives 14"):
        bad = list(ann)
        bad[11] = Conv(np.ones((5, 9, 1, 1)), None)
        convert(bad, (1, 8, 8), x)


def test_multi_output_network_round_trips_through_nir(tmp_path):
    from atsnn.compiler.nir_export import export_nir
    from atsnn.compiler.nir_import import import_nir
    from atsnn.compiler.pipeline import compile_model
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (10, 1, 8, 8))
    net = convert(_yolo_like(rng), (1, 8, 8), x)
    export_nir(net, tmp_path / "det.nir")
    back = import_nir(tmp_path / "det.nir")
    assert back.decisions["outputs"]["heads"] == ["output_head1"]
    assert [l.neuron for l in back.layers].count("integrator") == 2
    np.testing.assert_allclose(run_float(back, x, 8).u, run_float(net, x, 8).u, rtol=1e-5, atol=1e-4)
    p = compile_model(back)
    assert not p.early_exit and all(l.mapping.unit == "pe" for l in p.layers)


def test_multi_head_program_simulates_with_fixed_T_only(tmp_path, capsys):
    from atsnn.cli import main
    from atsnn.compiler.nir_export import export_nir
    rng = np.random.default_rng(3)
    export_nir(convert(_yolo_like(rng), (1, 8, 8), rng.uniform(0, 1, (10, 1, 8, 8))), tmp_path / "det.nir")
    np.savez(tmp_path / "x.npz", x=rng.uniform(0, 1, (4, 1, 8, 8)))
    assert main(["compile", str(tmp_path / "det.nir"), "-o", str(tmp_path / "p")]) == 0
    capsys.readouterr()
    assert main(["simulate", str(tmp_path / "p"), "--data", str(tmp_path / "x.npz"), "-o", str(tmp_path / "r"),
                 "--quiet", "--json"]) == 0
    import json
    assert list(json.loads(capsys.readouterr().out)["policies"]) == ["fixed"]
    assert main(["simulate", str(tmp_path / "p"), "--data", str(tmp_path / "x.npz"), "--policy", "atsn",
                 "-o", str(tmp_path / "r2")]) == 2
    assert "2 output heads" in capsys.readouterr().err and not (tmp_path / "r2").exists()
