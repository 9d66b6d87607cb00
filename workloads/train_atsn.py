"""Train the digits CNN as an adaptive-timestep SNN (seed 001, ATSN) in PyTorch and ship it as NIR.

``python -m atsnn.workloads.train_atsn`` regenerates ``workloads/models/digits_cnn_atsn.nir`` and
``digits_cnn_atsn.json`` (needs the optional torch extra; about 80 s, one thread).

Network: the digits CNN of :mod:`atsnn.workloads.numpy_cnn`, built as an ``nn.Sequential``
``Conv(1->8,3x3,pad 1) - ClipReLU - AvgPool2 - Conv(8->16,3x3,pad 1) - ClipReLU - AvgPool2 - Flatten -
Linear(64->10)`` so that :func:`atsnn.compiler.torch_frontend.convert_torch` converts the trained module
directly (``threshold="clip"``, ``v_init="half"``).

Training (seed 001 sec. 2.1-2.2, STBP with surrogate gradients, fixed T = 4): the same module is run
as the SNN it converts to, so the trained network is the deployed one:

- hidden layers: IF neurons with threshold ``lam`` (the ClipReLU's learnable lambda), soft reset
  ``v -= lam``, initial membrane ``lam/2``, spikes of amplitude ``lam``; the input image is applied
  as a constant current every timestep (direct encoding);
- output layer, eq. 8 with tau = 1: a non-firing integrator ``u_t = u_{t-1} + W s_t + b`` (no reset);
  eq. 9: ``o^t = softmax(u_t)``; the prediction at step t is ``argmax u_t`` (= ``argmax o^t``, what the
  compiled program's AT unit reads);
- loss, eq. 11-13: ``I_t = 1 + exp(-1 - (t+1)/T)``, ``D = sum_t I_t``,
  ``L_imp = -1/B sum_t I_t/D sum_i z_i log o_i^t`` -- a cross-entropy on the accumulated output at
  every timestep, weighted so that early timesteps count more;
- surrogate gradient, eq. 14: ``ds/du = max(0, 1 - |u - V_th|/V_th)``, applied to the membrane
  normalised by the threshold (``u/lam``, i.e. V_th = 1 in the units in which spikes are 1; the
  spike's amplitude ``lam`` carries the scale), so ``d(lam*s)/du`` is exactly eq. 14's triangle.

The baseline ("plain cross-entropy", seed 001 sec. 3.3 / Fig. 4) is the same network, seed, data
order and schedule with the loss replaced by the cross-entropy of the final output only,
``-1/B sum_i z_i log o_i^T`` (the accumulated membrane after T steps, which weighs every timestep's
output current equally).

Deviations from the paper, and why:

- hidden neurons are IF with soft reset and a ``lam/2`` initial membrane (the QCFS-style neuron the
  converter and the accelerator implement), not eq. 1's LIF with hard reset (tau = 1 also in eq. 8);
  thresholds are trained (ClipReLU lambda) instead of a fixed V_th, so that training and deployment
  match exactly;
- eq. 13's ``lg`` is taken as the natural logarithm (a constant factor ln 10 = a rescaled
  learning rate);
- eq. 13 is the whole training loss; no separate unweighted cross-entropy term is added (eq. 13
  already is the per-timestep cross-entropy);
- the paper trains from scratch at batch 256 / 300 epochs on CIFAR; here, for 1257 8x8 images
  and a CPU budget: batch 64, 200 epochs (same initial lr 0.1, SGD momentum 0.9, weight decay 5e-4
  on the weights, cosine annealing); lambda starts at 1, is kept >= 0.05 and gets no weight decay.

An ablation separates the two ingredients of L_imp: "uniform" is the per-timestep cross-entropy
with equal weights 1/T (for T = 4, eq. 11's ``I_t/D`` are 0.264, 0.253, 0.245, 0.238, close to
uniform), so L_imp vs uniform isolates the importance weighting and uniform vs CE the per-timestep
supervision of the accumulated output.

The JSON holds the ANN accuracy of the trained weights (ClipReLU network), the float-SNN test
accuracy (compiler IR semantics, :func:`atsnn.compiler.float_sim.run_float`) at T = 1, 2, 3, 4, 8 for
both the L_imp model and the cross-entropy baseline, and the hyperparameters. Deterministic: fixed
seeds and split, one thread, ``torch.use_deterministic_algorithms(True)``.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MODELS = Path(__file__).parent / "models"
NAME = "digits_cnn_atsn"
TRAIN_T = 4
EVAL_TS = (1, 2, 3, 4, 8)
HPARAMS = dict(T=TRAIN_T, epochs=200, batch=64, lr=0.1, momentum=0.9, weight_decay=5e-4, lam_init=1.0,
               lam_min=0.05, seed=0)


def importance_weights(T: int) -> np.ndarray:
    """``I_t / D`` for t = 1..T (seed 001 eq. 11-12)."""
    i = 1.0 + np.exp(-1.0 - (np.arange(1, T + 1) + 1.0) / T)
    return i / i.sum()


def build_model(lam_init: float = HPARAMS["lam_init"]):
    """The digits CNN as an ``nn.Sequential`` with :class:`atsnn.compiler.torch_frontend.ClipReLU` activations."""
    from torch import nn

    from atsnn.compiler.torch_frontend import ClipReLU

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), ClipReLU(lam_init), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), ClipReLU(lam_init), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(64, 10))


def _spike_fn():
    import torch

    class Spike(torch.autograd.Function):
        """Heaviside of the threshold-normalised membrane ``x = u/lam - 1`` with eq. 14's triangle."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x >= 0).to(x.dtype)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * torch.clamp(1.0 - x.abs(), min=0.0)

    return Spike.apply


def snn_forward(model, x, T: int):
    """Run ``model`` as its converted SNN for T timesteps; returns the output membranes ``u``: (T, B, C).

    Layers other than ClipReLU act on every timestep's tensor (time folded into the batch);
    each ClipReLU becomes an IF layer (threshold lam, soft reset, initial membrane lam/2, spikes of
    amplitude lam); the last layer's currents are integrated without reset (eq. 8).
    """
    import torch

    from atsnn.compiler.torch_frontend import ClipReLU

    spike = _spike_fn()
    b = x.shape[0]
    h = x.unsqueeze(0).expand((T,) + tuple(x.shape)).reshape((T * b,) + tuple(x.shape[1:]))
    for layer in model:
        if isinstance(layer, ClipReLU):
            lam = layer.lam
            z = h.reshape((T, b) + tuple(h.shape[1:]))
            v = torch.full_like(z[0], 0.5) * lam
            out = []
            for t in range(T):
                v = v + z[t]
                s = spike(v / lam - 1.0)
                v = v - lam * s
                out.append(lam * s)
            h = torch.stack(out).reshape(h.shape)
        else:
            h = layer(h)
    return torch.cumsum(h.reshape((T, b) + tuple(h.shape[1:])), dim=0)


def atsn_loss(u, y, kind: str):
    """Loss over the accumulated outputs ``u`` (T, B, C) and labels ``y``.

    ``"imp"``: L_imp (eq. 13); ``"ce"``: cross-entropy of ``o^T`` only; ``"uniform"``: the
    per-timestep cross-entropy with equal weights (the ablation).
    """
    import torch
    import torch.nn.functional as F

    T = u.shape[0]
    if kind == "ce":
        return F.cross_entropy(u[-1], y)
    if kind in ("imp", "uniform"):
        w = importance_weights(T) if kind == "imp" else np.full(T, 1.0 / T)
        per_t = torch.stack([F.cross_entropy(u[t], y) for t in range(T)])
        return (torch.as_tensor(w, dtype=u.dtype) * per_t).sum()
    raise ValueError(f"loss must be 'imp', 'ce' or 'uniform', not {kind!r}")


@contextmanager
def _deterministic(seed: int):
    import torch

    threads = torch.get_num_threads()
    was_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_det)


@dataclass
class TrainResult:
    model: object
    loss: str
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    seconds: float = 0.0


def train_snn(x: np.ndarray, y: np.ndarray, *, loss: str, T: int = TRAIN_T, epochs: int = HPARAMS["epochs"],
              batch: int = HPARAMS["batch"], lr: float = HPARAMS["lr"], momentum: float = HPARAMS["momentum"],
              weight_decay: float = HPARAMS["weight_decay"], lam_init: float = HPARAMS["lam_init"],
              lam_min: float = HPARAMS["lam_min"], seed: int = HPARAMS["seed"]) -> TrainResult:
    """STBP training of the digits CNN as an SNN at fixed T with loss ``"imp"`` (L_imp) or ``"ce"``."""
    import torch

    t0 = time.perf_counter()
    with _deterministic(seed):
        model = build_model(lam_init)
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
        weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
        others = [p for n, p in model.named_parameters() if not n.endswith("weight")]
        opt = torch.optim.SGD([{"params": weights, "weight_decay": weight_decay},
                               {"params": others, "weight_decay": 0.0}], lr=lr, momentum=momentum)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
        gen = torch.Generator().manual_seed(seed)
        res = TrainResult(model=model, loss=loss)
        n = xt.shape[0]
        for _ in range(epochs):
            model.train()
            order = torch.randperm(n, generator=gen)
            total, count = 0.0, 0
            for s in range(0, n, batch):
                idx = order[s:s + batch]
                u = snn_forward(model, xt[idx], T)
                lv = atsn_loss(u, yt[idx], loss)
                opt.zero_grad()
                lv.backward()
                opt.step()
                with torch.no_grad():
                    for m in model:
                        if hasattr(m, "lam"):
                            m.lam.clamp_(min=lam_min)
                total += float(lv.detach()) * len(idx)
                count += len(idx)
            sched.step()
            res.losses.append(total / count)
        model.eval()
    res.seconds = time.perf_counter() - t0
    return res


def torch_accuracies(model, x: np.ndarray, y: np.ndarray, Ts=EVAL_TS) -> dict:
    """ANN accuracy (ClipReLU network) and torch-SNN accuracy at each T (argmax of u_T)."""
    import torch

    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    with torch.no_grad():
        ann = float((model(xt).argmax(dim=1).numpy() == y).mean())
        u = snn_forward(model, xt, max(Ts)).numpy()
    return dict(ann=ann, snn={str(T): float((u[T - 1].argmax(axis=1) == y).mean()) for T in Ts})


def float_snn_accuracies(net, x: np.ndarray, y: np.ndarray, Ts=EVAL_TS) -> dict:
    """Accuracy of the converted float SNN (compiler IR semantics) after T timesteps, for each T."""
    from atsnn.compiler.float_sim import run_float

    u = run_float(net, x, max(Ts)).u
    return {str(T): float((u[:, T - 1].argmax(axis=1) == y).mean()) for T in Ts}


LOSS_NAMES = {"imp": "L_imp (seed 001 eq. 11-13)", "ce": "cross-entropy of the final output o^T",
              "uniform": "per-timestep cross-entropy, equal weights 1/T (ablation)"}


def build_atsn(out_dir: Path = MODELS, *, epochs: int = HPARAMS["epochs"], n_train: int | None = None,
               ablation: bool = True, verbose: bool = False) -> dict:
    """Train the L_imp model, the CE baseline (and the uniform-weight ablation), export the L_imp
    model as ``<out_dir>/digits_cnn_atsn.nir`` and write ``digits_cnn_atsn.json``; returns the JSON dict."""
    from atsnn.compiler.nir_export import export_nir
    from atsnn.compiler.torch_frontend import convert_torch
    from atsnn.workloads.digits import load_split

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    xtr, ytr, xte, yte = load_split()
    if n_train is not None:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    results, nets = {}, {}
    for kind in ("imp", "ce") + (("uniform",) if ablation else ()):
        r = train_snn(xtr, ytr, loss=kind, epochs=epochs)
        nets[kind] = convert_torch(r.model, (1, 8, 8), xtr, threshold="clip", v_init="half",
                                   name=NAME if kind == "imp" else f"{NAME}_{kind}")
        acc = torch_accuracies(r.model, xte, yte)
        results[kind] = dict(
            loss=LOSS_NAMES[kind], ann_test_accuracy=acc["ann"],
            clip_lambdas=[float(m.lam.detach()) for m in r.model if hasattr(m, "lam")],
            snn_float_test_accuracy=float_snn_accuracies(nets[kind], xte, yte),
            snn_torch_test_accuracy=acc["snn"],
            train_loss_first_last=[r.losses[0], r.losses[-1]] if r.losses else [])
        if verbose:
            print(f"{kind}: {r.seconds:.1f} s, loss {r.losses[0]:.3f} -> {r.losses[-1]:.3f}, ANN {acc['ann']:.4f}, "
                  f"float SNN {results[kind]['snn_float_test_accuracy']}", flush=True)
    export_nir(nets["imp"], out_dir / f"{NAME}.nir")
    imp = results.pop("imp")
    table = {}
    for T in EVAL_TS:
        table[str(T)] = dict(l_imp=imp["snn_float_test_accuracy"][str(T)],
                             ce=results["ce"]["snn_float_test_accuracy"][str(T)])
        if "uniform" in results:
            table[str(T)]["uniform"] = results["uniform"]["snn_float_test_accuracy"][str(T)]
    meta = dict(
        model=NAME,
        ann="torch CNN: Conv(1->8,3x3,pad1)-ClipReLU-AvgPool2-Conv(8->16,3x3,pad1)-ClipReLU-AvgPool2-FC(64->10)",
        data="sklearn load_digits / 16, stratified 70/30 split, random_state=0"
             + (f"; training on the first {n_train} training images" if n_train is not None else ""),
        training=("SNN-aware STBP at fixed T (seed 001): IF hidden layers (threshold = ClipReLU lambda, soft "
                  "reset, v0 = lambda/2), no-reset output integrator (eq. 8-10), loss L_imp (eq. 11-13), "
                  "surrogate eq. 14; deviations in workloads/train_atsn.py"),
        loss=imp["loss"], threshold="clip", v_init="0.5*theta",
        hyperparameters=dict(HPARAMS, epochs=epochs, n_train=int(len(xtr)),
                             optimizer="SGD+momentum, cosine annealing, weight decay on weights only",
                             importance_weights_I_over_D=[float(v) for v in importance_weights(TRAIN_T)]),
        ann_test_accuracy=imp["ann_test_accuracy"], clip_lambdas=imp["clip_lambdas"],
        snn_float_test_accuracy=imp["snn_float_test_accuracy"],
        snn_torch_test_accuracy=imp["snn_torch_test_accuracy"],
        train_loss_first_last=imp["train_loss_first_last"],
        baseline_ce=results["ce"],
        **({"ablation_uniform": results["uniform"]} if "uniform" in results else {}),
        comparison=("float-SNN test accuracy (540 images) at fixed T, L_imp vs plain cross-entropy, same seed, "
                    "data order and schedule (seed 001 Fig. 4 style); one training seed"),
        comparison_table=table)
    (out_dir / f"{NAME}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main() -> None:
    meta = build_atsn(verbose=True)
    print(f"{'T':>3} {'L_imp':>7} {'CE':>7} {'uniform':>7}")
    for T, row in meta["comparison_table"].items():
        print(f"{T:>3} {row['l_imp']:7.4f} {row['ce']:7.4f} {row.get('uniform', float('nan')):7.4f}")
    print("ANN accuracy (L_imp weights):", round(meta["ann_test_accuracy"], 4))


if __name__ == "__main__":
    main()
