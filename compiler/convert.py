"""ANN -> SNN conversion without PyTorch (seeds 000, 003, 004).

An ANN is a list of layer specs (plain dataclasses holding numpy arrays):
:class:`Dense`, :class:`Conv`, :class:`BatchNorm`, :class:`ReLU`,
:class:`Clip` (a trained clip threshold lambda, QCFS / QC-ANN),
:class:`AvgPool`, :class:`Flatten`. :func:`convert` folds BatchNorm into the
preceding weighted layer (``W <- W*gamma/sigma``, ``b <- beta + (b -
mu)*gamma/sigma``), picks each IF layer's threshold from calibration
activations (``"max"`` Diehl, ``"p99.9"`` Rueckauer, ``"channel-p99.9"``
seed 004, or ``"clip"`` the trained lambda), sets the initial membrane (0 or
``0.5*theta``), and returns a :class:`FloatNetwork` whose last weighted
layer is the non-firing output integrator. Threshold balancing follows the
usual identity: an IF neuron with threshold ``lambda_l`` fed by
``W_l * lambda_{l-1}`` and emitting unit spikes approximates
``ReLU(W_l x)``. :func:`convert_to_nir` writes the result as NIR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atsnn.errors import ConversionError
from atsnn.program import Pool
from compiler.ir import FloatLayer, FloatNetwork, FloatSynapse
from compiler.nir_import import conv_out_shape


@dataclass
class Dense:
    weight: np.ndarray  # (out, in)
    bias: np.ndarray | None = None


@dataclass
class Conv:
    weight: np.ndarray  # (Cout, Cin, kh, kw)
    bias: np.ndarray | None = None
    stride: int = 1
    padding: int = 0


@dataclass
class BatchNorm:
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float = 1e-5


@dataclass
class ReLU:
    pass


@dataclass
class Clip:
    """QCFS / QC-ANN activation: clamp(x, 0, lam) (quantisation levels do not matter for conversion)."""

    lam: float


@dataclass
class AvgPool:
    kernel: int
    stride: int | None = None


@dataclass
class Flatten:
    pass


@dataclass
class Residual:
    """A residual block ``ReLU(body(x) + shortcut(x))`` (ResNet basic block).

    ``body``: ``[Conv, (BatchNorm), ReLU|Clip, Conv, (BatchNorm)]``; ``shortcut``: ``[]`` for identity or
    ``[Conv, (BatchNorm)]`` (e.g. a strided 1x1 projection). ``act`` is the activation after the
    addition (``ReLU()`` or ``Clip(lam)``). The input must be the output of an activation.
    """

    body: list
    shortcut: list = field(default_factory=list)
    act: object = field(default_factory=ReLU)


THRESHOLD_METHODS = ("max", "p99.9", "channel-p99.9", "clip")


def fold_batchnorm(w: np.ndarray, b: np.ndarray, bn: BatchNorm) -> tuple[np.ndarray, np.ndarray]:
    """``W <- W*gamma/sigma``, ``b <- beta + (b - mu)*gamma/sigma`` (per output channel)."""
    sigma = np.sqrt(np.asarray(bn.var, dtype=np.float64) + bn.eps)
    g = np.asarray(bn.gamma, dtype=np.float64) / sigma
    w2 = w * g.reshape((-1,) + (1,) * (w.ndim - 1))
    b2 = np.asarray(bn.beta, dtype=np.float64) + (b - np.asarray(bn.mean, dtype=np.float64)) * g
    return w2, b2


@dataclass
class _Block:
    kind: str  # "dense" | "conv"
    weight: np.ndarray
    bias: np.ndarray
    stride: int = 1
    padding: int = 0
    pool_before: int | None = None  # avg-pool kernel applied to the block's input
    pool_stride: int | None = None
    flatten_before: bool = False
    act: str | None = None  # "relu" | "clip"
    lam: float | None = None
    skip_from: int | None = None  # block whose activation feeds the shortcut (-1: the network input)
    skip_weight: np.ndarray | None = None  # (Cout, Cin, kh, kw) conv weights of the shortcut
    skip_stride: int = 1
    skip_padding: int = 0


def _conv_bn(specs: list, where: str) -> tuple[np.ndarray, np.ndarray, int, int, list]:
    """Leading Conv (+ BatchNorm folded) of a spec list; returns (w, b, stride, padding, rest)."""
    if not specs or not isinstance(specs[0], Conv):
        raise ConversionError(f"{where}: expected a Conv first")
    c = specs[0]
    w = np.asarray(c.weight, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise ConversionError(f"{where}: weight contains NaN or inf")
    b = np.zeros(w.shape[0]) if c.bias is None else np.asarray(c.bias, dtype=np.float64)
    rest = specs[1:]
    if rest and isinstance(rest[0], BatchNorm):
        w, b = fold_batchnorm(w, b, rest[0])
        rest = rest[1:]
    return w, b, c.stride, c.padding, rest


def _act_of(spec, where: str) -> tuple[str, float | None]:
    if isinstance(spec, ReLU):
        return "relu", None
    if isinstance(spec, Clip):
        if not spec.lam > 0:
            raise ConversionError(f"{where}: clip threshold lambda must be positive, not {spec.lam!r}")
        return "clip", float(spec.lam)
    raise ConversionError(f"{where}: expected ReLU or Clip, not {type(spec).__name__}")


def _residual_blocks(spec: Residual, blocks: list[_Block], i: int) -> None:
    if not blocks or blocks[-1].act is None:
        raise ConversionError(f"ANN layer {i}: a Residual block must follow an activation")
    src = len(blocks) - 1
    w1, b1, s1, p1, rest = _conv_bn(spec.body, f"ANN layer {i} (Residual body)")
    if not rest:
        raise ConversionError(f"ANN layer {i}: Residual body needs Conv, activation, Conv")
    a1, l1 = _act_of(rest[0], f"ANN layer {i} (Residual body)")
    w2, b2, s2, p2, rest = _conv_bn(rest[1:], f"ANN layer {i} (Residual body, second conv)")
    if rest:
        raise ConversionError(f"ANN layer {i}: Residual body has unsupported trailing layers")
    blocks.append(_Block(kind="conv", weight=w1, bias=b1, stride=s1, padding=p1, act=a1, lam=l1))
    if spec.shortcut:
        ws, bs, ss, ps, rest = _conv_bn(spec.shortcut, f"ANN layer {i} (Residual shortcut)")
        if rest:
            raise ConversionError(f"ANN layer {i}: Residual shortcut must be Conv (+ BatchNorm)")
    else:
        cin = blocks[src].weight.shape[0]
        if cin != w2.shape[0]:
            raise ConversionError(f"ANN layer {i}: identity shortcut has {cin} channels, body gives {w2.shape[0]}; "
                                  "give a projection shortcut")
        ws, bs, ss, ps = np.eye(cin).reshape(cin, cin, 1, 1), np.zeros(cin), 1, 0
    a2, l2 = _act_of(spec.act, f"ANN layer {i} (Residual activation)")
    blocks.append(_Block(kind="conv", weight=w2, bias=b2 + bs, stride=s2, padding=p2, act=a2, lam=l2,
                         skip_from=src, skip_weight=ws, skip_stride=ss, skip_padding=ps))


def _blocks(ann: list) -> list[_Block]:
    blocks: list[_Block] = []
    pending_pool = None
    pending_flat = False
    for i, spec in enumerate(ann):
        if isinstance(spec, (Dense, Conv)):
            w = np.asarray(spec.weight, dtype=np.float64)
            if not np.all(np.isfinite(w)):
                raise ConversionError(f"ANN layer {i} ({type(spec).__name__}): weight contains NaN or inf")
            b = np.zeros(w.shape[0]) if spec.bias is None else np.asarray(spec.bias, dtype=np.float64)
            blk = _Block(kind="dense" if isinstance(spec, Dense) else "conv", weight=w, bias=b,
                         stride=getattr(spec, "stride", 1), padding=getattr(spec, "padding", 0))
            if pending_pool is not None:
                blk.pool_before, blk.pool_stride = pending_pool
            blk.flatten_before = pending_flat
            pending_pool, pending_flat = None, False
            blocks.append(blk)
        elif isinstance(spec, BatchNorm):
            if not blocks or blocks[-1].act is not None:
                raise ConversionError(f"ANN layer {i}: BatchNorm must follow a Dense or Conv layer")
            blocks[-1].weight, blocks[-1].bias = fold_batchnorm(blocks[-1].weight, blocks[-1].bias, spec)
        elif isinstance(spec, (ReLU, Clip)):
            if not blocks or blocks[-1].act is not None:
                raise ConversionError(f"ANN layer {i}: activation must follow a Dense or Conv layer")
            blocks[-1].act = "relu" if isinstance(spec, ReLU) else "clip"
            if isinstance(spec, Clip):
                if not spec.lam > 0:
                    raise ConversionError(f"ANN layer {i}: clip threshold lambda must be positive, not {spec.lam!r}")
                blocks[-1].lam = float(spec.lam)
        elif isinstance(spec, Residual):
            if pending_pool is not None or pending_flat:
                raise ConversionError(f"ANN layer {i}: pooling or flatten directly before a Residual block is not "
                                      "supported")
            _residual_blocks(spec, blocks, i)
        elif isinstance(spec, AvgPool):
            pending_pool = (spec.kernel, spec.stride or spec.kernel)
        elif isinstance(spec, Flatten):
            pending_flat = True
        else:
            raise ConversionError(f"ANN layer {i}: unsupported layer type {type(spec).__name__}")
    if not blocks:
        raise ConversionError("the ANN has no Dense or Conv layer")
    if blocks[-1].act is not None:
        raise ConversionError("the last ANN layer must be a Dense/Conv without activation (the output integrator)")
    for i, b in enumerate(blocks[:-1]):
        if b.act is None:
            raise ConversionError(f"weighted layer {i} has no activation; every hidden layer needs ReLU or Clip")
    return blocks


def _avgpool(x: np.ndarray, k: int, s: int) -> np.ndarray:
    b, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((b, c, oh, ow))
    for ky in range(k):
        for kx in range(k):
            out += x[:, :, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s]
    return out / (k * k)


def _conv(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    from hwsim.ops import conv2d
    return conv2d(x.astype(np.float64), w.astype(np.float64), (stride, stride), (padding, padding)).astype(np.float64)


def ann_forward(blocks: list[_Block], x: np.ndarray, *, upto: int | None = None) -> list[np.ndarray]:
    """Activations after each block (float64); the last block has none (its pre-activation is returned)."""
    acts = []
    h = np.asarray(x, dtype=np.float64)
    for i, b in enumerate(blocks):
        if b.pool_before is not None:
            h = _avgpool(h, b.pool_before, b.pool_stride)
        if b.flatten_before or (b.kind == "dense" and h.ndim > 2):
            h = h.reshape(h.shape[0], -1)
        if b.kind == "dense":
            z = h @ b.weight.T + b.bias
        else:
            z = _conv(h, b.weight, b.stride, b.padding) + b.bias.reshape(1, -1, 1, 1)
        if b.skip_from is not None:
            hs = x if b.skip_from < 0 else acts[b.skip_from]
            z = z + _conv(np.asarray(hs, dtype=np.float64), b.skip_weight, b.skip_stride, b.skip_padding)
        if b.act == "relu":
            h = np.maximum(z, 0)
        elif b.act == "clip":
            h = np.clip(z, 0, b.lam)
        else:
            h = z
        acts.append(h)
        if upto is not None and i >= upto:
            break
    return acts


def _threshold(act: np.ndarray, method: str, blk: _Block) -> np.ndarray:
    c = act.shape[1]
    if method == "clip":
        if blk.lam is None:
            raise ConversionError("threshold method 'clip' needs Clip activations (trained lambda) on every layer")
        return np.full(c, blk.lam)
    pos = act[act > 0]
    if method == "max":
        v = float(act.max()) if act.size else 0.0
        thr = np.full(c, v)
    elif method == "p99.9":
        thr = np.full(c, float(np.percentile(pos, 99.9)) if pos.size else 0.0)
    elif method == "channel-p99.9":
        a = np.moveaxis(act, 1, 0).reshape(c, -1)
        thr = np.array([np.percentile(r[r > 0], 99.9) if np.any(r > 0) else 0.0 for r in a])
        fallback = float(np.percentile(pos, 99.9)) if pos.size else 1.0
        thr = np.where(thr > 0, thr, fallback)
    else:
        raise ConversionError(f"unknown threshold method '{method}' (choose {', '.join(THRESHOLD_METHODS)})")
    if np.any(thr <= 0):
        thr = np.where(thr > 0, thr, 1.0)
    return thr


def convert(ann: list, input_shape: tuple[int, ...], calib: np.ndarray, *, threshold: str = "p99.9",
            v_init: str = "half", name: str = "converted", lmpc_T: int = 8, lmpc_samples: int = 64) -> FloatNetwork:
    """Convert an ANN (layer specs) to a float SNN; ``calib`` are calibration inputs (n, *input_shape).

    ``v_init``: ``"zero"``, ``"half"`` (0.5*theta, QCFS/OptI) or ``"lmpc"`` (seed 000 eq. 13, layer by
    layer on ``lmpc_samples`` calibration inputs at ``lmpc_T`` timesteps).
    """
    if threshold not in THRESHOLD_METHODS:
        raise ConversionError(f"unknown threshold method '{threshold}' (choose {', '.join(THRESHOLD_METHODS)})")
    if v_init not in ("zero", "half", "lmpc"):
        raise ConversionError(f"v_init must be 'zero', 'half' or 'lmpc', not {v_init!r}")
    calib = np.asarray(calib, dtype=np.float64).reshape((-1,) + tuple(input_shape))
    if not np.all(np.isfinite(calib)):
        raise ConversionError("calibration data contains NaN or inf")
    blocks = _blocks(ann)
    acts = ann_forward(blocks, calib)
    layers: list[FloatLayer] = []
    src, src_shape, prev_thr = "input", tuple(input_shape), None
    built: list[tuple[str, tuple, np.ndarray | None]] = []  # per block: (layer name, shape, threshold)
    for i, b in enumerate(blocks):
        last = i == len(blocks) - 1
        w = b.weight.copy()
        # scale by the presynaptic threshold (unit spikes carry lambda_{l-1})
        if prev_thr is not None:
            if b.kind == "conv" or (b.pool_before is None and not b.flatten_before and len(src_shape) == 1):
                per_in = prev_thr
                if b.kind == "conv":
                    w = w * per_in.reshape(1, -1, 1, 1)
                else:
                    w = w * per_in.reshape(1, -1)
            else:
                # dense after (pool and) flatten of a (C, H, W) map: channel-major input order
                c = prev_thr.size
                per = int(np.prod(src_shape)) // c
                pooled_per = w.shape[1] // c
                w = w * np.repeat(prev_thr, pooled_per).reshape(1, -1)
                del per
        pool = None
        in_shape = src_shape
        if b.pool_before is not None:
            k, s = b.pool_before, b.pool_stride
            pool = Pool(kernel=(k, k), stride=(s, s))
            w = w / (k * k)
            in_shape = (src_shape[0], (src_shape[1] - k) // s + 1, (src_shape[2] - k) // s + 1)
        flatten = b.kind == "dense" and len(in_shape) > 1
        if flatten:
            in_shape = (int(np.prod(in_shape)),)
        if b.kind == "dense":
            if w.shape[1] != in_shape[0]:
                raise ConversionError(f"weighted layer {i}: weight expects {w.shape[1]} inputs, gets {in_shape[0]}")
            out_shape = (w.shape[0],)
            syn = FloatSynapse(source=src, op="dense", weight=w, input_shape=in_shape, pool=pool, flatten=flatten)
        else:
            if w.shape[1] != in_shape[0]:
                raise ConversionError(f"weighted layer {i}: conv expects {w.shape[1]} channels, gets {in_shape[0]}")
            out_shape = conv_out_shape(in_shape, w.shape, (b.stride, b.stride), (b.padding, b.padding))
            syn = FloatSynapse(source=src, op="conv2d", weight=w, input_shape=in_shape,
                               stride=(b.stride, b.stride), padding=(b.padding, b.padding), pool=pool)
        lname = f"fc{i}" if b.kind == "dense" else f"conv{i}"
        syns = [syn]
        if b.skip_from is not None:
            s_name, s_shape, s_thr = ("input", tuple(input_shape), None) if b.skip_from < 0 else built[b.skip_from]
            ws = b.skip_weight if s_thr is None else b.skip_weight * s_thr.reshape(1, -1, 1, 1)
            sk_shape = conv_out_shape(s_shape, ws.shape, (b.skip_stride, b.skip_stride),
                                      (b.skip_padding, b.skip_padding))
            if sk_shape != out_shape:
                raise ConversionError(f"weighted layer {i}: shortcut gives {sk_shape}, body gives {out_shape}")
            syns.append(FloatSynapse(source=s_name, op="conv2d", weight=ws, input_shape=s_shape,
                                     stride=(b.skip_stride, b.skip_stride),
                                     padding=(b.skip_padding, b.skip_padding)))
        if last:
            layers.append(FloatLayer(name=lname, neuron="integrator", shape=out_shape, synapses=syns,
                                     bias=b.bias.copy(), threshold=np.ones(out_shape[0]),
                                     v_init=np.zeros(out_shape[0])))
            break
        thr = _threshold(acts[i], threshold, b)
        layers.append(FloatLayer(name=lname, neuron="if", shape=out_shape, synapses=syns, bias=b.bias.copy(),
                                 threshold=thr, v_init=thr * (0.5 if v_init == "half" else 0.0), reset="subtract"))
        src, src_shape, prev_thr = lname, out_shape, thr
        built.append((lname, out_shape, thr))
    net = FloatNetwork(name=name, input_shape=tuple(input_shape), layers=layers, output=layers[-1].name,
                       decisions={"converter": {"threshold": threshold, "v_init": v_init},
                                  "input_max": float(calib.max())})
    if v_init == "lmpc":
        calibrate_initial_membrane(net, acts, calib[:lmpc_samples], lmpc_T)
    return net


def calibrate_initial_membrane(net: FloatNetwork, acts: list[np.ndarray], calib: np.ndarray, T: int) -> None:
    """LMPC (seed 000 eq. 13), layer by layer: ``v_i(0) = T/N * sum_n |h_i(z) - phi_i(T)|``.

    ``h_i(z)`` is the ANN activation of neuron i, ``phi_i(T) = theta * spikes_i / T`` the SNN's
    average output after T timesteps with the layers below already calibrated. The value is
    averaged over each channel (the PE holds one initial membrane per channel) and limited to
    ``[0, theta]`` (a larger start would fire before any input arrives).
    """
    from compiler.float_sim import run_float

    n = calib.shape[0]
    hidden = [l for l in net.layers if l.neuron != "integrator"]
    for idx, layer in enumerate(hidden):
        run = run_float(net, calib, T, per_neuron=True)
        c = layer.shape[0]
        phi = run.neuron_spikes[layer.name].reshape(n, c, -1) * (layer.threshold.reshape(1, c, 1) / T)
        h = acts[idx][:n].reshape(n, c, -1)
        v0 = T * np.abs(h - phi).mean(axis=(0, 2))
        layer.v_init = np.clip(v0, 0.0, layer.threshold)


def convert_to_nir(ann: list, input_shape, calib, path: str | Path, **kwargs) -> FloatNetwork:
    from compiler.nir_export import export_nir
    net = convert(ann, input_shape, calib, **kwargs)
    export_nir(net, path)
    return net
