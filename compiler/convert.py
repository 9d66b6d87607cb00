"""ANN -> SNN conversion without PyTorch (seeds 000, 003, 004).

An ANN is a list of layer specs (plain dataclasses holding numpy arrays):
:class:`Dense`, :class:`Conv`, :class:`ConvTranspose`, :class:`BatchNorm`,
:class:`ReLU`, :class:`Clip` (a trained clip threshold lambda, QCFS /
QC-ANN), :class:`AvgPool`, :class:`Flatten`, :class:`Residual` (ResNet basic
block), and for multi-branch detection networks (seed 004's YOLOv3-tiny)
:class:`Tap` / :class:`Route` / :class:`Concat`: a Tap names an activation, a
Route continues from it (turning the layer before, if it has no activation,
into an output head) and a Concat joins it along channels, which the next
convolution reads as one synapse per part. :func:`convert` folds BatchNorm into the
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
from atsnn.compiler.ir import FloatLayer, FloatNetwork, FloatSynapse
from atsnn.compiler.nir_import import conv_out_shape


@dataclass
class Dense:
    weight: np.ndarray  # (out, in)
    bias: np.ndarray | None = None
    name: str | None = None  # layer name in the SNN (default fc<i>)


@dataclass
class Conv:
    weight: np.ndarray  # (Cout, Cin, kh, kw)
    bias: np.ndarray | None = None
    stride: int = 1
    padding: int = 0
    name: str | None = None  # layer name in the SNN (default conv<i>)


@dataclass
class ConvTranspose:
    """Transposed convolution (seed 004's replacement for upsampling); PyTorch layout and semantics."""

    weight: np.ndarray  # (Cin, Cout, kh, kw)
    bias: np.ndarray | None = None
    stride: int = 1
    padding: int = 0
    output_padding: int = 0
    name: str | None = None  # layer name in the SNN (default deconv<i>)


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


@dataclass
class Tap:
    """Names the current activation so that a later :class:`Route` or :class:`Concat` can use it."""

    name: str


@dataclass
class Route:
    """Continue from the activation named by an earlier :class:`Tap` (YOLO's one-input route layer).

    If the layer just before has no activation, it becomes an output head (a non-firing integrator
    read out after the last timestep, like the detection heads of YOLOv3-tiny).
    """

    name: str


@dataclass
class Concat:
    """Concatenate, along channels, the tapped activation ``name`` after the current one (YOLO's
    two-input route layer). The next weighted layer reads both; its weights are split by input channel."""

    name: str


#: channel-p99.9 thresholds are at least the layer-wide 99.9th percentile / CHANNEL_FLOOR
CHANNEL_FLOOR = 32

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
    transposed: bool = False  # conv weight is (Cin, Cout, kh, kw)
    output_padding: int = 0
    src: int = -1  # block whose activation feeds this block (-1: the network input)
    concat: list[int] = field(default_factory=list)  # further sources, concatenated after src along channels
    head: bool = False  # an output head: integrator read out at the end, not a source of other blocks
    name: str | None = None
    pool_before: int | None = None  # avg-pool kernel applied to the block's input
    pool_stride: int | None = None
    flatten_before: bool = False
    act: str | None = None  # "relu" | "clip"
    lam: float | None = None
    skip_from: int | None = None  # block whose activation feeds the shortcut (-1: the network input)
    skip_weight: np.ndarray | None = None  # (Cout, Cin, kh, kw) conv weights of the shortcut
    skip_stride: int = 1
    skip_padding: int = 0

    @property
    def cin_axis(self) -> int:
        return 0 if self.transposed else 1

    @property
    def out_channels(self) -> int:
        return self.weight.shape[1 if self.transposed else 0]


def _fold_into(blk: _Block, bn: BatchNorm) -> None:
    if blk.transposed:
        w, b = fold_batchnorm(blk.weight.transpose(1, 0, 2, 3), blk.bias, bn)
        blk.weight, blk.bias = w.transpose(1, 0, 2, 3), b
    else:
        blk.weight, blk.bias = fold_batchnorm(blk.weight, blk.bias, bn)


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


def _residual_blocks(spec: Residual, blocks: list[_Block], i: int, cur: int) -> None:
    if cur < 0 or blocks[cur].act is None:
        raise ConversionError(f"ANN layer {i}: a Residual block must follow an activation")
    w1, b1, s1, p1, rest = _conv_bn(spec.body, f"ANN layer {i} (Residual body)")
    if not rest:
        raise ConversionError(f"ANN layer {i}: Residual body needs Conv, activation, Conv")
    a1, l1 = _act_of(rest[0], f"ANN layer {i} (Residual body)")
    w2, b2, s2, p2, rest = _conv_bn(rest[1:], f"ANN layer {i} (Residual body, second conv)")
    if rest:
        raise ConversionError(f"ANN layer {i}: Residual body has unsupported trailing layers")
    blocks.append(_Block(kind="conv", weight=w1, bias=b1, stride=s1, padding=p1, act=a1, lam=l1, src=cur))
    if spec.shortcut:
        ws, bs, ss, ps, rest = _conv_bn(spec.shortcut, f"ANN layer {i} (Residual shortcut)")
        if rest:
            raise ConversionError(f"ANN layer {i}: Residual shortcut must be Conv (+ BatchNorm)")
    else:
        cin = blocks[cur].out_channels
        if cin != w2.shape[0]:
            raise ConversionError(f"ANN layer {i}: identity shortcut has {cin} channels, body gives {w2.shape[0]}; "
                                  "give a projection shortcut")
        ws, bs, ss, ps = np.eye(cin).reshape(cin, cin, 1, 1), np.zeros(cin), 1, 0
    a2, l2 = _act_of(spec.act, f"ANN layer {i} (Residual activation)")
    blocks.append(_Block(kind="conv", weight=w2, bias=b2 + bs, stride=s2, padding=p2, act=a2, lam=l2,
                         src=len(blocks) - 1, skip_from=cur, skip_weight=ws, skip_stride=ss, skip_padding=ps))


def _blocks(ann: list) -> list[_Block]:
    blocks: list[_Block] = []
    pending_pool = None
    pending_flat = False
    taps: dict[str, int] = {}
    cur = -1  # block whose activation is the current tensor (-1: the input)
    concat: list[int] = []
    for i, spec in enumerate(ann):
        if isinstance(spec, (Dense, Conv, ConvTranspose)):
            if blocks and cur == len(blocks) - 1 and blocks[-1].act is None:
                raise ConversionError(f"ANN layer {i}: weighted layer {len(blocks) - 1} has no activation; every "
                                      "hidden layer needs ReLU or Clip (an output head must be followed by a Route)")
            w = np.asarray(spec.weight, dtype=np.float64)
            if not np.all(np.isfinite(w)):
                raise ConversionError(f"ANN layer {i} ({type(spec).__name__}): weight contains NaN or inf")
            transposed = isinstance(spec, ConvTranspose)
            cout = w.shape[1] if transposed else w.shape[0]
            b = np.zeros(cout) if spec.bias is None else np.asarray(spec.bias, dtype=np.float64)
            blk = _Block(kind="dense" if isinstance(spec, Dense) else "conv", weight=w, bias=b,
                         stride=getattr(spec, "stride", 1), padding=getattr(spec, "padding", 0),
                         transposed=transposed, output_padding=getattr(spec, "output_padding", 0),
                         src=cur, concat=concat, name=spec.name)
            if concat and (pending_pool is not None or pending_flat or blk.kind == "dense"):
                raise ConversionError(f"ANN layer {i}: a Concat must feed a convolution directly")
            if pending_pool is not None:
                blk.pool_before, blk.pool_stride = pending_pool
            blk.flatten_before = pending_flat
            pending_pool, pending_flat, concat = None, False, []
            blocks.append(blk)
            cur = len(blocks) - 1
        elif isinstance(spec, BatchNorm):
            if not blocks or cur != len(blocks) - 1 or blocks[-1].act is not None:
                raise ConversionError(f"ANN layer {i}: BatchNorm must follow a Dense or Conv layer")
            _fold_into(blocks[-1], spec)
        elif isinstance(spec, (ReLU, Clip)):
            if not blocks or cur != len(blocks) - 1 or blocks[-1].act is not None:
                raise ConversionError(f"ANN layer {i}: activation must follow a Dense or Conv layer")
            blocks[-1].act, blocks[-1].lam = _act_of(spec, f"ANN layer {i}")
        elif isinstance(spec, Residual):
            if pending_pool is not None or pending_flat or concat:
                raise ConversionError(f"ANN layer {i}: pooling, flatten or Concat directly before a Residual block "
                                      "is not supported")
            _residual_blocks(spec, blocks, i, cur)
            cur = len(blocks) - 1
        elif isinstance(spec, (Tap, Route, Concat)):
            kind = type(spec).__name__
            if isinstance(spec, Tap):
                if cur >= 0 and blocks[cur].act is None:
                    raise ConversionError(f"ANN layer {i}: Tap '{spec.name}' must follow an activation")
                if pending_pool is not None or pending_flat:
                    raise ConversionError(f"ANN layer {i}: Tap '{spec.name}' after pooling or flatten is not supported")
                taps[spec.name] = cur
                continue
            if spec.name not in taps:
                raise ConversionError(f"ANN layer {i}: {kind} refers to '{spec.name}', which no earlier Tap names "
                                      f"(known: {', '.join(sorted(taps)) or 'none'})")
            if pending_pool is not None or pending_flat:
                raise ConversionError(f"ANN layer {i}: {kind} after pooling or flatten is not supported")
            if isinstance(spec, Route):
                if blocks and cur == len(blocks) - 1 and blocks[-1].act is None:
                    blocks[-1].head = True
                elif concat:
                    raise ConversionError(f"ANN layer {i}: Route directly after a Concat discards it")
                cur = taps[spec.name]
            else:
                if cur >= 0 and blocks[cur].act is None:
                    raise ConversionError(f"ANN layer {i}: Concat must follow an activation")
                concat = concat + [taps[spec.name]]
        elif isinstance(spec, AvgPool):
            pending_pool = (spec.kernel, spec.stride or spec.kernel)
        elif isinstance(spec, Flatten):
            pending_flat = True
        else:
            raise ConversionError(f"ANN layer {i}: unsupported layer type {type(spec).__name__}")
    if not blocks:
        raise ConversionError("the ANN has no Dense or Conv layer")
    if blocks[-1].act is not None or cur != len(blocks) - 1:
        raise ConversionError("the last ANN layer must be a Dense/Conv without activation (the output integrator)")
    for i, b in enumerate(blocks[:-1]):
        if b.act is None and not b.head:
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
    from atsnn.hwsim.ops import conv2d
    return conv2d(x.astype(np.float64), w.astype(np.float64), (stride, stride), (padding, padding)).astype(np.float64)


def _block_op(b: _Block, h: np.ndarray) -> np.ndarray:
    if b.kind == "dense":
        return h @ b.weight.T + b.bias
    if b.transposed:
        from atsnn.hwsim.ops import conv_transpose2d
        z = conv_transpose2d(h, b.weight, (b.stride, b.stride), (b.padding, b.padding),
                             (b.output_padding, b.output_padding)).astype(np.float64)
    else:
        z = _conv(h, b.weight, b.stride, b.padding)
    return z + b.bias.reshape(1, -1, 1, 1)


def ann_forward(blocks: list[_Block], x: np.ndarray, *, upto: int | None = None) -> list[np.ndarray]:
    """Activations after each block (float64); heads and the last block have none (pre-activation returned)."""
    acts: list[np.ndarray] = []
    x = np.asarray(x, dtype=np.float64)
    for i, b in enumerate(blocks):
        parts = [x if s < 0 else acts[s] for s in [b.src] + b.concat]
        h = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        if b.pool_before is not None:
            h = _avgpool(h, b.pool_before, b.pool_stride)
        if b.flatten_before or (b.kind == "dense" and h.ndim > 2):
            h = h.reshape(h.shape[0], -1)
        if h.shape[1] != b.weight.shape[b.cin_axis]:
            what = "the Concat of its inputs" if b.concat else "its input"
            raise ConversionError(f"weighted layer {i}{f' ({b.name})' if b.name else ''}: expects "
                                  f"{b.weight.shape[b.cin_axis]} input channels, {what} gives {h.shape[1]}")
        z = _block_op(b, h)
        if b.skip_from is not None:
            hs = x if b.skip_from < 0 else acts[b.skip_from]
            z = z + _conv(hs, b.skip_weight, b.skip_stride, b.skip_padding)
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
        # a channel that is almost never active would get a threshold so small that its weights
        # (w * lambda_in / lambda_out) leave the integer range: floor at 1/CHANNEL_FLOOR of the layer's value
        thr = np.where(thr > 0, np.maximum(thr, fallback / CHANNEL_FLOOR), fallback)
    else:
        raise ConversionError(f"unknown threshold method '{method}' (choose {', '.join(THRESHOLD_METHODS)})")
    if np.any(thr <= 0):
        thr = np.where(thr > 0, thr, 1.0)
    return thr


def _scaled(w: np.ndarray, thr: np.ndarray | None, axis: int) -> np.ndarray:
    """Weights times the presynaptic threshold along the input-channel axis (unit spikes carry lambda)."""
    if thr is None:
        return w
    shape = [1] * w.ndim
    shape[axis] = -1
    return w * thr.reshape(shape)


def _single_source_synapse(i: int, b: _Block, w: np.ndarray, src: tuple) -> tuple[FloatSynapse, tuple]:
    """The synapse of a block fed by one source (with optional pool/flatten); returns (synapse, out shape)."""
    s_name, src_shape, prev_thr = src
    if prev_thr is not None:
        if b.kind == "conv":
            w = _scaled(w, prev_thr, b.cin_axis)
        elif b.pool_before is None and not b.flatten_before and len(src_shape) == 1:
            w = _scaled(w, prev_thr, 1)
        else:
            # dense after (pool and) flatten of a (C, H, W) map: channel-major input order
            w = w * np.repeat(prev_thr, w.shape[1] // prev_thr.size).reshape(1, -1)
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
        return FloatSynapse(source=s_name, op="dense", weight=w, input_shape=in_shape, pool=pool,
                            flatten=flatten), (w.shape[0],)
    return _conv_synapse(i, b, w, s_name, in_shape, pool)


def _conv_synapse(i: int, b: _Block, w: np.ndarray, s_name: str, in_shape: tuple, pool=None):
    if w.shape[b.cin_axis] != in_shape[0]:
        raise ConversionError(f"weighted layer {i}: conv expects {w.shape[b.cin_axis]} channels, gets {in_shape[0]} "
                              f"from '{s_name}'")
    st, pd_, op = (b.stride, b.stride), (b.padding, b.padding), (b.output_padding, b.output_padding)
    out_shape = conv_out_shape(in_shape, w.shape, st, pd_, transposed=b.transposed, output_padding=op)
    if b.transposed:
        return FloatSynapse(source=s_name, op="conv_transpose2d", weight=w, input_shape=in_shape, stride=st,
                            padding=pd_, output_padding=op, pool=pool), out_shape
    return FloatSynapse(source=s_name, op="conv2d", weight=w, input_shape=in_shape, stride=st, padding=pd_,
                        pool=pool), out_shape


def convert(ann: list, input_shape: tuple[int, ...], calib: np.ndarray, *, threshold: str = "p99.9",
            v_init: str = "half", name: str = "converted", lmpc_T: int = 8, lmpc_samples: int = 64) -> FloatNetwork:
    """Convert an ANN (layer specs) to a float SNN; ``calib`` are calibration inputs (n, *input_shape).

    ``v_init``: ``"zero"``, ``"half"`` (0.5*theta, QCFS/OptI) or ``"lmpc"`` (seed 000 eq. 13, layer by
    layer on ``lmpc_samples`` calibration inputs at ``lmpc_T`` timesteps). The last weighted layer is the
    primary output; heads marked by :class:`Route` are further integrator layers (multi-output networks
    such as YOLOv3-tiny).
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
    built: dict[int, tuple[str, tuple, np.ndarray | None]] = {-1: ("input", tuple(input_shape), None)}
    block_of: dict[str, int] = {}
    for i, b in enumerate(blocks):
        srcs = [built[s] for s in [b.src] + b.concat]
        if len(srcs) == 1:
            syn, out_shape = _single_source_synapse(i, b, b.weight.copy(), srcs[0])
            syns = [syn]
        else:
            total = sum(s[1][0] for s in srcs)
            if b.weight.shape[b.cin_axis] != total:
                raise ConversionError(f"weighted layer {i}: conv expects {b.weight.shape[b.cin_axis]} channels, the "
                                      f"Concat of {', '.join(repr(s[0]) for s in srcs)} gives {total}")
            syns, shapes, off = [], [], 0
            for s_name, s_shape, s_thr in srcs:
                part = np.take(b.weight, np.arange(off, off + s_shape[0]), axis=b.cin_axis)
                off += s_shape[0]
                syn, out_shape = _conv_synapse(i, b, _scaled(part, s_thr, b.cin_axis), s_name, s_shape)
                syns.append(syn)
                shapes.append((s_name, out_shape))
            if len({sh for _, sh in shapes}) > 1:
                raise ConversionError(f"weighted layer {i}: the Concat inputs give different output shapes: "
                                      + ", ".join(f"'{n}' -> {sh}" for n, sh in shapes))
        lname = b.name or (f"fc{i}" if b.kind == "dense" else (f"deconv{i}" if b.transposed else f"conv{i}"))
        if lname in block_of or lname == "input":
            raise ConversionError(f"weighted layer {i}: layer name '{lname}' is already used")
        if b.skip_from is not None:
            s_name, s_shape, s_thr = built[b.skip_from]
            ws = _scaled(b.skip_weight, s_thr, 1)
            sk_shape = conv_out_shape(s_shape, ws.shape, (b.skip_stride, b.skip_stride),
                                      (b.skip_padding, b.skip_padding))
            if sk_shape != out_shape:
                raise ConversionError(f"weighted layer {i}: shortcut gives {sk_shape}, body gives {out_shape}")
            syns.append(FloatSynapse(source=s_name, op="conv2d", weight=ws, input_shape=s_shape,
                                     stride=(b.skip_stride, b.skip_stride),
                                     padding=(b.skip_padding, b.skip_padding)))
        block_of[lname] = i
        if b.head or i == len(blocks) - 1:
            layers.append(FloatLayer(name=lname, neuron="integrator", shape=out_shape, synapses=syns,
                                     bias=b.bias.copy(), threshold=np.ones(out_shape[0]),
                                     v_init=np.zeros(out_shape[0]),
                                     extra={"head": True} if b.head else {}))
            continue
        thr = _threshold(acts[i], threshold, b)
        layers.append(FloatLayer(name=lname, neuron="if", shape=out_shape, synapses=syns, bias=b.bias.copy(),
                                 threshold=thr, v_init=thr * (0.5 if v_init == "half" else 0.0), reset="subtract"))
        built[i] = (lname, out_shape, thr)
    net = FloatNetwork(name=name, input_shape=tuple(input_shape), layers=layers, output=layers[-1].name,
                       decisions={"converter": {"threshold": threshold, "v_init": v_init},
                                  "input_max": float(calib.max())})
    if v_init == "lmpc":
        calibrate_initial_membrane(net, {n: acts[i] for n, i in block_of.items()}, calib[:lmpc_samples], lmpc_T)
    return net


def calibrate_initial_membrane(net: FloatNetwork, acts: dict[str, np.ndarray], calib: np.ndarray, T: int) -> None:
    """LMPC (seed 000 eq. 13), layer by layer: ``v_i(0) = T/N * sum_n |h_i(z) - phi_i(T)|``.

    ``h_i(z)`` is the ANN activation of neuron i, ``phi_i(T) = theta * spikes_i / T`` the SNN's
    average output after T timesteps with the layers below already calibrated. The value is
    averaged over each channel (the PE holds one initial membrane per channel) and limited to
    ``[0, theta]`` (a larger start would fire before any input arrives).
    """
    from atsnn.compiler.float_sim import run_float

    n = calib.shape[0]
    hidden = [l for l in net.layers if l.neuron != "integrator"]
    for layer in hidden:
        run = run_float(net, calib, T, per_neuron=True)
        c = layer.shape[0]
        phi = run.neuron_spikes[layer.name].reshape(n, c, -1) * (layer.threshold.reshape(1, c, 1) / T)
        h = acts[layer.name][:n].reshape(n, c, -1)
        v0 = T * np.abs(h - phi).mean(axis=(0, 2))
        layer.v_init = np.clip(v0, 0.0, layer.threshold)


def convert_to_nir(ann: list, input_shape, calib, path: str | Path, **kwargs) -> FloatNetwork:
    from atsnn.compiler.nir_export import export_nir
    net = convert(ann, input_shape, calib, **kwargs)
    export_nir(net, path)
    return net
