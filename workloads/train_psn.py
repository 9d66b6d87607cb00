"""Sequential digits with sliding PSN and LIF neurons (seed 002), trained in PyTorch and shipped as NIR.

``python -m atsnn.workloads.train_psn`` regenerates ``workloads/models/digits_seq_psn.{nir,json}`` and
``digits_seq_lif.{nir,json}`` (needs the optional torch extra; about 3 minutes on one thread).

Task: the scikit-learn digits with the split of :mod:`atsnn.workloads.digits` (stratified 70/30,
``random_state = 0``), each 8x8 image fed one row per timestep (``T = 8`` frames of 8 multi-bit
pixels, pixel / 16 in [0, 1]; the frame layout of ``atsnn.hwsim.datasets.digits_sequence_split``, i.e.
``--data digits-seq``). The class is the argmax of the output integrator after the last row: the
readout ``Linear`` is summed over time (``u_t = u_{t-1} + W s_t + b``), so reading it after every
row gives the accuracy per timestep, and the AT unit can stop before the last row.

Networks (:func:`build_model`): ``8 -> 128 -> 128 -> 10``, each hidden ``nn.Linear`` followed by

- (a) a :class:`atsnn.compiler.torch_frontend.SlidingPSN` of order k (taps initialised by seed 002 eq. 17,
  ``W_i = 2**(i-k+1)``, threshold initialised to 1, both learnable per layer); shipped with
  ``k = 4``, trained also with k = 1, 2, 8 for the table ``k_sweep`` in the JSON;
- (b) the baseline, a :class:`atsnn.compiler.torch_frontend.LIFNeuron` (the PE's shift leak
  ``beta = 1 - 2**-leak_shift``, soft reset, learnable threshold initialised to 1, reset detached
  from the graph); shipped with ``leak_shift = 1`` (``beta = 0.5``, i.e. ``tau_m = 2``, the LIF
  that eq. 17's initial taps imitate), trained also with leak shifts 2, 3 (``leak_sweep``).

Training (both, identical): BPTT through the T = 8 rows with the arctan surrogate (``alpha = 4``,
seed 002 sec. 6.4), cross-entropy of the integrator after the last row divided by T (a fixed
temperature: the argmax does not change), AdamW (lr 3e-3, weight decay 0.1; seed 002 trains the
sliding PSN with AdamW), cosine annealing over 100 epochs, batch 64, no augmentation; thresholds
are kept >= 0.05 (the compiled threshold must be positive). Hyperparameters were chosen once on
this set-up for both neuron types; the choice of k = 4 and leak shift 1 for the shipped models was
fixed beforehand (not picked by test accuracy).

The JSON of each shipped model holds the torch accuracies (train and test, after every row), the
float-SNN test accuracy of the exported network per timestep (compiler IR semantics,
:func:`atsnn.compiler.float_sim.run_float` on the NIR file as shipped), the torch/float agreement of the
predicted class, the sweep table and the hyperparameters. Deterministic: fixed seeds, data order
and split, one thread, ``torch.use_deterministic_algorithms(True)``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

MODELS = Path(__file__).parent / "models"
T_SEQ = 8
FRAME_SHAPE = (8,)
PSN_K = 4
LIF_LEAK_SHIFT = 1
K_SWEEP = (1, 2, 4, 8)
LEAK_SWEEP = (1, 2, 3)
HPARAMS = dict(T=T_SEQ, hidden=128, hidden_layers=2, epochs=100, batch=64, lr=3e-3, weight_decay=0.1,
               threshold_init=1.0, threshold_min=0.05, surrogate="arctan, alpha = 4", seed=0)
NAMES = {"psn": "digits_seq_psn", "lif": "digits_seq_lif"}


def sequences(x: np.ndarray) -> np.ndarray:
    """Digits images (n, 1, 8, 8) or (n, 64) -> sequences (n, T = 8, 8): frame t is image row t."""
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(x.shape[0], 8, 8)


def load_sequences() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) of :func:`atsnn.workloads.digits.load_split` as (n, 8, 8) sequences."""
    from atsnn.workloads.digits import load_split

    xtr, ytr, xte, yte = load_split()
    return sequences(xtr), np.asarray(ytr), sequences(xte), np.asarray(yte)


def build_model(neuron: str, order: int, *, hidden: int = HPARAMS["hidden"],
                hidden_layers: int = HPARAMS["hidden_layers"], threshold: float = HPARAMS["threshold_init"]):
    """``8 -> hidden x hidden_layers -> 10`` with ``SlidingPSN(k=order)`` (``neuron="psn"``) or
    ``LIFNeuron(leak_shift=order)`` (``neuron="lif"``) after every hidden Linear; the last Linear is the
    readout (the output integrator)."""
    from torch import nn

    from atsnn.compiler.torch_frontend import LIFNeuron, SlidingPSN

    if neuron not in ("psn", "lif"):
        raise ValueError(f"neuron must be 'psn' or 'lif', not {neuron!r}")
    mods, n = [], FRAME_SHAPE[0]
    for _ in range(hidden_layers):
        mods += [nn.Linear(n, hidden), SlidingPSN(order, threshold) if neuron == "psn" else LIFNeuron(order, threshold)]
        n = hidden
    mods.append(nn.Linear(n, 10))
    return nn.Sequential(*mods)


def _deterministic(seed: int):
    from atsnn.workloads.train_atsn import _deterministic as det
    return det(seed)


def train(neuron: str, order: int, x: np.ndarray, y: np.ndarray, *, epochs: int = HPARAMS["epochs"],
          batch: int = HPARAMS["batch"], lr: float = HPARAMS["lr"], weight_decay: float = HPARAMS["weight_decay"],
          seed: int = HPARAMS["seed"]) -> tuple[object, dict]:
    """BPTT training on sequences ``x`` (n, T, 8); returns (model in eval mode, log)."""
    import torch
    import torch.nn.functional as F

    from atsnn.compiler.torch_frontend import sequence_forward

    t0 = time.perf_counter()
    with _deterministic(seed):
        model = build_model(neuron, order)
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float32).permute(1, 0, 2).contiguous()  # (T, n, 8)
        yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
        gen = torch.Generator().manual_seed(seed)
        n, T = xt.shape[1], xt.shape[0]
        losses = []
        for _ in range(epochs):
            model.train()
            order_ = torch.randperm(n, generator=gen)
            total = 0.0
            for s in range(0, n, batch):
                idx = order_[s:s + batch]
                u = sequence_forward(model, xt[:, idx])
                loss = F.cross_entropy(u[-1] / T, yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for m in model:
                        if hasattr(m, "threshold") and isinstance(m.threshold, torch.nn.Parameter):
                            m.threshold.clamp_(min=HPARAMS["threshold_min"])
                total += float(loss.detach()) * len(idx)
            sched.step()
            losses.append(total / n)
        model.eval()
    return model, dict(seconds=time.perf_counter() - t0, loss_first_last=[losses[0], losses[-1]])


def torch_accuracy_per_step(model, x: np.ndarray, y: np.ndarray) -> list[float]:
    """Accuracy of the argmax of the torch integrator after rows 1..T."""
    import torch

    from atsnn.compiler.torch_frontend import sequence_forward

    with torch.no_grad():
        u = sequence_forward(model, torch.as_tensor(np.asarray(x), dtype=torch.float32).permute(1, 0, 2)).numpy()
    return [float((u[t].argmax(axis=1) == y).mean()) for t in range(u.shape[0])]


def float_snn_outputs(net, x: np.ndarray) -> np.ndarray:
    """Output integrator (n, T, 10) of the float SNN of ``net`` (compiler IR semantics) on sequences ``x``."""
    from atsnn.compiler.float_sim import run_float

    return run_float(net, x, T_SEQ).u


def _model_entry(model, neuron, order, xtr, ytr, xte, yte, log) -> dict:
    params = {}
    for i, m in enumerate(model):
        if hasattr(m, "threshold"):
            p = dict(threshold=float(m.threshold.detach()))
            if neuron == "psn":
                p["taps"] = [float(v) for v in m.taps.detach()]
            params[f"layer{i}"] = p
    te = torch_accuracy_per_step(model, xte, yte)
    return dict(neuron=neuron, order=order, torch_train_accuracy=torch_accuracy_per_step(model, xtr, ytr)[-1],
                torch_test_accuracy=te[-1], torch_test_accuracy_per_step=te, trained_neuron_params=params,
                train_seconds=round(log["seconds"], 1), train_loss_first_last=log["loss_first_last"])


def build_psn_models(out_dir: Path = MODELS, *, epochs: int = HPARAMS["epochs"], n_train: int | None = None,
                     sweep: bool = True, verbose: bool = False) -> dict:
    """Train the sweeps, export the k = 4 PSN and the leak-shift-1 LIF models as NIR in ``out_dir`` with
    their JSON; returns ``{"psn": meta, "lif": meta}``."""
    import torch

    from atsnn.compiler.nir_export import export_nir
    from atsnn.compiler.nir_import import import_nir
    from atsnn.compiler.torch_frontend import sequence_forward, snn_from_torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    xtr, ytr, xte, yte = load_sequences()
    if n_train is not None:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    metas = {}
    for neuron, shipped, grid, what in (("psn", PSN_K, K_SWEEP, "k"), ("lif", LIF_LEAK_SHIFT, LEAK_SWEEP, "leak_shift")):
        table, ship = {}, None
        for order in (grid if sweep else (shipped,)):
            model, log = train(neuron, order, xtr, ytr, epochs=epochs)
            entry = _model_entry(model, neuron, order, xtr, ytr, xte, yte, log)
            table[str(order)] = dict(torch_train_accuracy=entry["torch_train_accuracy"],
                                     torch_test_accuracy=entry["torch_test_accuracy"],
                                     train_seconds=entry["train_seconds"])
            if verbose:
                print(f"{neuron} {what}={order}: {log['seconds']:.1f} s, train {entry['torch_train_accuracy']:.4f}, "
                      f"test {entry['torch_test_accuracy']:.4f}", flush=True)
            if order == shipped:
                ship = (model, entry)
        model, entry = ship
        name = NAMES[neuron]
        net = snn_from_torch(model, FRAME_SHAPE, name=name, input_max=1.0)
        path = out_dir / f"{name}.nir"
        export_nir(net, path)
        shipped_net = import_nir(path)
        u = float_snn_outputs(shipped_net, xte)
        with torch.no_grad():
            ut = sequence_forward(model, torch.as_tensor(xte).permute(1, 0, 2)).numpy().transpose(1, 0, 2)
        flt = [float((u[:, t].argmax(axis=1) == yte).mean()) for t in range(T_SEQ)]
        desc = (f"SlidingPSN(k={shipped}), taps init W_i = 2^(i-k+1) (eq. 17)" if neuron == "psn"
                else f"LIFNeuron(leak_shift={shipped}, beta = {1 - 2.0 ** -shipped:g}), soft reset")
        meta = dict(
            model=name,
            task="sequential digits: 8x8 image fed one row (8 pixels, pixel/16) per timestep, T = 8; class = argmax "
                 "of the output integrator after the last row",
            network=f"Linear(8->128) - {desc} - Linear(128->128) - {desc} - Linear(128->10) summed over time "
                    "(output integrator)",
            data="sklearn load_digits / 16, stratified 70/30 split, random_state=0"
                 + (f"; training on the first {n_train} training images" if n_train is not None else ""),
            training="BPTT, arctan surrogate (alpha 4), CE of u_T / T, AdamW + cosine; details in "
                     "workloads/train_psn.py",
            hyperparameters=dict(HPARAMS, epochs=epochs, n_train=int(len(xtr)), optimizer="AdamW, cosine annealing"),
            **{k: v for k, v in entry.items() if k not in ("neuron", "order")},
            snn_float_test_accuracy=flt[-1],
            snn_float_test_accuracy_per_step=flt,
            torch_float_class_agreement=float((u[:, -1].argmax(axis=1) == ut[:, -1].argmax(axis=1)).mean()),
            torch_float_max_abs_diff=float(np.abs(u - ut).max()),
            **{f"{what}_sweep": table},
            sweep_note=f"same data order, seed and schedule for every {what}; torch float accuracies on the 540 "
                       "test sequences; one training seed (one test image = 0.19 points)")
        meta[what] = shipped
        (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        metas[neuron] = meta
    return metas


def main() -> None:
    metas = build_psn_models(verbose=True)
    for neuron, meta in metas.items():
        print(f"{meta['model']}: torch test {meta['torch_test_accuracy']:.4f}, float SNN of the NIR file "
              f"{meta['snn_float_test_accuracy']:.4f} (class agreement {meta['torch_float_class_agreement']:.4f})")


if __name__ == "__main__":
    main()
