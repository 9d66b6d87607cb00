"""Train the digits ANNs and ship them as converted SNN NIR files (deterministic: fixed seeds and split).

``python -m atsnn.workloads.train_digits`` regenerates, in ``workloads/models/``:

- ``digits_mlp.nir`` (scikit-learn MLP, 99.9th-percentile thresholds) and ``digits_mlp_max.nir``
  (max-activation thresholds);
- ``digits_cnn_p999.nir`` (numpy-trained CNN with ReLU, 99.9th-percentile thresholds) and
  ``digits_cnn_clip.nir`` (the CNN trained with clip activations, thresholds = trained lambdas);

all with v_init = 0.5*theta, plus a JSON file per model with the ANN accuracy and the float-SNN
accuracy at T = 4, 8, 16, 32.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MODELS = Path(__file__).parent / "models"
HIDDEN = 64


def train_mlp(seed: int = 0):
    from sklearn.neural_network import MLPClassifier
    from atsnn.workloads.digits import load_split

    xtr, ytr, xte, yte = load_split()
    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", max_iter=400, random_state=seed)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(xtr.reshape(len(xtr), -1), ytr)
    ann_acc = float(clf.score(xte.reshape(len(xte), -1), yte))
    return clf, ann_acc


def mlp_spec(clf):
    from atsnn.compiler.convert import Dense, Flatten, ReLU
    return [Flatten(), Dense(clf.coefs_[0].T, clf.intercepts_[0]), ReLU(), Dense(clf.coefs_[1].T, clf.intercepts_[1])]


def float_snn_accuracy(net, x, y, T: int) -> float:
    """Accuracy of the float SNN (compiler IR semantics) after T timesteps: dense IF layers only."""
    h = x.reshape(len(x), -1).astype(np.float64)
    v = {l.name: np.tile(np.repeat(l.v_init, l.neurons // l.shape[0]), (len(x), 1)).astype(np.float64)
         for l in net.layers}
    spikes = {}
    for _ in range(T):
        for l in net.layers:
            syn = l.synapses[0]
            src = h if syn.source == "input" else spikes[syn.source]
            a = src @ syn.weight.T + l.bias
            if l.neuron == "integrator":
                v[l.name] = v[l.name] + a
                continue
            v[l.name] = l.beta * v[l.name] + a
            z = (v[l.name] >= l.threshold).astype(np.float64)
            v[l.name] = v[l.name] - z * l.threshold
            spikes[l.name] = z
    return float((v[net.output].argmax(axis=1) == y).mean())


def _float_accuracy(net, x, y, T: int) -> float:
    from atsnn.compiler.float_sim import run_float
    return float((run_float(net, x, T).u[:, -1].argmax(axis=1) == y).mean())


def build_cnns(out_dir: Path = MODELS) -> dict:
    from atsnn.compiler.convert import convert
    from atsnn.compiler.nir_export import export_nir
    from atsnn.workloads.digits import load_split
    from atsnn.workloads.numpy_cnn import accuracy, train

    xtr, ytr, xte, yte = load_split()
    info = {}
    for name, clip, method in (("digits_cnn_p999", False, "p99.9"), ("digits_cnn_clip", True, "clip")):
        model = train(xtr, ytr, clip=clip, seed=0)
        net = convert(model.spec(), (1, 8, 8), xtr, threshold=method, v_init="half", name=name)
        export_nir(net, out_dir / f"{name}.nir")
        meta = dict(model=name, ann="numpy CNN: Conv(1->8,3x3)-act-AvgPool2-Conv(8->16,3x3)-act-AvgPool2-FC(64->10), "
                                    f"{'trainable clip' if clip else 'ReLU'}, SGD+momentum, 60 epochs, seed 0",
                    data="sklearn load_digits / 16, stratified 70/30 split, random_state=0", threshold=method,
                    v_init="0.5*theta", ann_test_accuracy=accuracy(model, xte, yte),
                    clip_lambdas=[float(v) for v in model.lam] if clip else None,
                    snn_float_test_accuracy={str(T): _float_accuracy(net, xte, yte, T) for T in (4, 8, 16, 32)})
        (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        info[name] = meta
    return info


def build_all(out_dir: Path = MODELS) -> dict:
    from atsnn.compiler.convert import convert
    from atsnn.compiler.nir_export import export_nir
    from atsnn.workloads.digits import load_split

    out_dir.mkdir(parents=True, exist_ok=True)
    xtr, ytr, xte, yte = load_split()
    clf, ann_acc = train_mlp()
    info = {}
    for name, method in (("digits_mlp", "p99.9"), ("digits_mlp_max", "max")):
        net = convert(mlp_spec(clf), (1, 8, 8), xtr, threshold=method, v_init="half", name=name)
        export_nir(net, out_dir / f"{name}.nir")
        meta = dict(model=name, ann="sklearn MLPClassifier(64,) relu, max_iter=400, random_state=0",
                    data="sklearn load_digits / 16, stratified 70/30 split, random_state=0",
                    threshold=method, v_init="0.5*theta", ann_test_accuracy=ann_acc,
                    snn_float_test_accuracy={str(T): float_snn_accuracy(net, xte, yte, T) for T in (4, 8, 16, 32)})
        (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        info[name] = meta
    info.update(build_cnns(out_dir))
    return info


if __name__ == "__main__":
    for k, v in build_all().items():
        print(k, "ANN", round(v["ann_test_accuracy"], 4), "SNN float", v["snn_float_test_accuracy"])
