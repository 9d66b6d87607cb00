"""PyTorch front end: an ``nn.Module`` ANN -> :mod:`atsnn.compiler.convert` layer specs -> float SNN.

:func:`ann_from_torch` walks an ``nn.Sequential`` (nested Sequentials are flattened in order) and
turns each supported module into the numpy spec :func:`atsnn.compiler.convert.convert` takes:

=====================================  ==========================================================
``nn.Conv2d``                          :class:`~atsnn.compiler.convert.Conv` (groups = dilation = 1, square
                                       stride and zero padding; ``padding="valid"`` or ``"same"``)
``nn.Linear``                          :class:`~atsnn.compiler.convert.Dense`
``nn.BatchNorm2d`` / ``nn.BatchNorm1d``  :class:`~atsnn.compiler.convert.BatchNorm` (running statistics;
                                       folded into the layer before by the converter)
``nn.ReLU``                            :class:`~atsnn.compiler.convert.ReLU`
:class:`ClipReLU` (below)              :class:`~atsnn.compiler.convert.Clip` (trained threshold lambda)
``nn.AvgPool2d``                       :class:`~atsnn.compiler.convert.AvgPool` (square, no padding)
``nn.Flatten``                         :class:`~atsnn.compiler.convert.Flatten` (``start_dim=1, end_dim=-1``)
``nn.Dropout*``, ``nn.Identity``       skipped (identity at inference)
=====================================  ==========================================================

Anything else (max pooling, GELU, custom modules, grouped or dilated convolutions, rectangular
strides, ...) raises :class:`atsnn.errors.ConversionError` naming the module's qualified name
(as in ``module.named_modules()``) and its type. :func:`convert_torch` then runs the same
:func:`atsnn.compiler.convert.convert` as the numpy path, so a torch model and a numpy spec with the same
weights give the same :class:`~atsnn.compiler.ir.FloatNetwork`.

Directly trained SNNs on sequences (seed 002, docs/hardware.md sec. 11) take a second path, with no
converter: :class:`SlidingPSN` (sliding parallel spiking neurons, eq. 14-17) and :class:`LIFNeuron`
(the PE's shift-leak LIF with soft reset) are trainable neuron modules on ``(T, B, ...)`` sequences
(arctan surrogate gradient); :func:`sequence_forward` runs a Sequential of them with a summed
readout, and :func:`snn_from_torch` turns it into a :class:`~atsnn.compiler.ir.FloatNetwork` with
``input_encoding = "sequence"`` whose float SNN (:func:`atsnn.compiler.float_sim.run_float`) computes the
same outputs.

PyTorch is an optional dependency (``pip install 'atsnn[torch]'``): importing this module does not
import it; calling :func:`ann_from_torch` / :func:`convert_torch` / :func:`snn_from_torch` or
touching :class:`ClipReLU`, :class:`SlidingPSN` or :class:`LIFNeuron` without PyTorch raises an
``ImportError`` that says how to install it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from atsnn.errors import ConversionError

_INSTALL_HINT = ("PyTorch is not installed; the torch front end needs the optional extra "
                 "(pip install 'atsnn[torch]')")


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised in a subprocess without torch
        raise ImportError(_INSTALL_HINT) from exc
    return torch


_clip_relu_cls = None


def _make_clip_relu():
    global _clip_relu_cls
    if _clip_relu_cls is not None:
        return _clip_relu_cls
    torch = _torch()
    nn = torch.nn

    class ClipReLU(nn.Module):
        """QCFS / QC-ANN style clip activation ``clamp(x, 0, lam)`` with a learnable scalar ``lam``.

        The gradient with respect to ``lam`` is 1 where ``x > lam`` (the input is clipped) and 0
        elsewhere; the trained ``lam`` becomes the SNN threshold (``convert(..., threshold="clip")``).
        """

        def __init__(self, lam: float = 2.0):
            super().__init__()
            if not lam > 0:
                raise ValueError(f"ClipReLU: lam must be positive, not {lam!r}")
            self.lam = nn.Parameter(torch.tensor(float(lam)))

        def forward(self, x):
            return torch.minimum(torch.relu(x), self.lam)

        def extra_repr(self) -> str:
            return f"lam={float(self.lam.detach()):.4g}"

    ClipReLU.__module__ = __name__
    ClipReLU.__qualname__ = "ClipReLU"
    _clip_relu_cls = ClipReLU
    return ClipReLU


def _np(t) -> np.ndarray:
    return t.detach().cpu().to(dtype=_torch().float64).numpy().copy()


def _square(value, what: str, qual: str, kind: str) -> int:
    """An int or a pair of equal ints -> int; anything else is not expressible by the specs."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ConversionError(f"module '{qual}' ({kind}): {what} {tuple(value)} is not square; only equal "
                                  "height and width values are supported")
        value = value[0]
    return int(value)


def _where(qual: str, kind: str) -> str:
    return f"module '{qual}' ({kind})"


def _conv_spec(m, qual: str):
    from atsnn.compiler.convert import Conv

    kind = type(m).__name__
    if m.groups != 1:
        raise ConversionError(f"{_where(qual, kind)}: groups={m.groups} is not supported (only groups=1)")
    if tuple(m.dilation) != (1, 1):
        raise ConversionError(f"{_where(qual, kind)}: dilation={tuple(m.dilation)} is not supported (only 1)")
    if m.padding_mode != "zeros":
        raise ConversionError(f"{_where(qual, kind)}: padding_mode='{m.padding_mode}' is not supported "
                              "(only 'zeros')")
    kh, kw = m.kernel_size
    stride = _square(m.stride, "stride", qual, kind)
    if isinstance(m.padding, str):
        if m.padding == "valid":
            padding = 0
        elif kh == kw and kh % 2 == 1 and stride == 1:  # "same" with an odd square kernel
            padding = (kh - 1) // 2
        else:
            raise ConversionError(f"{_where(qual, kind)}: padding='{m.padding}' with kernel {(kh, kw)} cannot be "
                                  "expressed as a symmetric zero padding")
    else:
        padding = _square(m.padding, "padding", qual, kind)
    bias = None if m.bias is None else _np(m.bias)
    return Conv(_np(m.weight), bias, stride=stride, padding=padding)


def _bn_spec(m, qual: str):
    from atsnn.compiler.convert import BatchNorm

    kind = type(m).__name__
    if m.running_mean is None or m.running_var is None:
        raise ConversionError(f"{_where(qual, kind)}: needs running statistics (track_running_stats=True)")
    c = m.num_features
    gamma = _np(m.weight) if m.weight is not None else np.ones(c)
    beta = _np(m.bias) if m.bias is not None else np.zeros(c)
    return BatchNorm(gamma=gamma, beta=beta, mean=_np(m.running_mean), var=_np(m.running_var), eps=float(m.eps))


def _pool_spec(m, qual: str):
    from atsnn.compiler.convert import AvgPool

    kind = type(m).__name__
    k = _square(m.kernel_size, "kernel_size", qual, kind)
    s = _square(m.stride if m.stride is not None else m.kernel_size, "stride", qual, kind)
    if _square(m.padding, "padding", qual, kind) != 0:
        raise ConversionError(f"{_where(qual, kind)}: padding={m.padding} is not supported (only 0)")
    if m.ceil_mode:
        raise ConversionError(f"{_where(qual, kind)}: ceil_mode=True is not supported")
    if m.divisor_override is not None:
        raise ConversionError(f"{_where(qual, kind)}: divisor_override={m.divisor_override} is not supported")
    return AvgPool(k, s)


def _module_specs(m, qual: str, out: list) -> None:
    from atsnn.compiler.convert import Clip, Dense, Flatten, ReLU

    torch = _torch()
    nn = torch.nn
    kind = type(m).__name__
    if type(m) is nn.Sequential:  # a Sequential subclass may override forward: treated as custom
        for child_name, child in m.named_children():
            _module_specs(child, f"{qual}.{child_name}" if qual else child_name, out)
        return
    if type(m) is nn.Conv2d:
        out.append(_conv_spec(m, qual))
    elif type(m) is nn.Linear:
        out.append(Dense(_np(m.weight), None if m.bias is None else _np(m.bias)))
    elif type(m) in (nn.BatchNorm2d, nn.BatchNorm1d):
        out.append(_bn_spec(m, qual))
    elif type(m) is nn.ReLU:
        out.append(ReLU())
    elif type(m) is _make_clip_relu():
        lam = float(m.lam.detach())
        if not lam > 0:
            raise ConversionError(f"{_where(qual, kind)}: clip threshold lam must be positive, not {lam!r}")
        out.append(Clip(lam))
    elif type(m) is nn.AvgPool2d:
        out.append(_pool_spec(m, qual))
    elif type(m) is nn.Flatten:
        if m.start_dim != 1 or m.end_dim != -1:
            raise ConversionError(f"{_where(qual, kind)}: only Flatten(start_dim=1, end_dim=-1) is supported, "
                                  f"not start_dim={m.start_dim}, end_dim={m.end_dim}")
        out.append(Flatten())
    elif type(m) in (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity):
        pass  # identity at inference
    else:
        raise ConversionError(f"{_where(qual or '<root>', kind)} is not supported by the torch front end "
                              "(supported: Sequential, Conv2d, Linear, BatchNorm1d/2d, ReLU, ClipReLU, AvgPool2d, "
                              "Flatten, Dropout, Identity)")


def ann_from_torch(module: Any) -> list:
    """The :mod:`atsnn.compiler.convert` layer specs of a torch ANN (see the module docstring).

    Parameters and BatchNorm running statistics are copied as float64 numpy arrays; ``module`` is
    not modified (its train/eval mode does not matter: BatchNorm always uses the running statistics,
    Dropout is dropped).
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise ConversionError(f"ann_from_torch expects a torch.nn.Module, not {type(module).__name__}")
    specs: list = []
    _module_specs(module, "", specs)
    if not specs:
        raise ConversionError("the torch module has no layers to convert")
    return specs


def convert_torch(module: Any, input_shape: tuple[int, ...], calib, **convert_kwargs):
    """``atsnn.compiler.convert.convert(ann_from_torch(module), input_shape, calib, **convert_kwargs)``.

    ``calib`` may be a numpy array or a torch tensor of shape (n, *input_shape).
    """
    from atsnn.compiler.convert import convert

    torch = _torch()
    if isinstance(calib, torch.Tensor):
        calib = _np(calib)
    return convert(ann_from_torch(module), tuple(input_shape), calib, **convert_kwargs)


# --------------------------------------------------------------------------------------------------
# Directly trained SNNs on sequences: sliding PSN and LIF neuron modules, and their front end
# --------------------------------------------------------------------------------------------------
#
# The modules below are trained as SNNs (BPTT with a surrogate gradient) on sequences shaped
# (T, B, *frame_shape), one frame per timestep, and exported as a FloatNetwork with
# input_encoding = "sequence" (docs/hardware.md sec. 11). :func:`sequence_forward` runs a Sequential
# of them exactly as atsnn.compiler.float_sim runs the exported network.

#: slope parameter of the arctan surrogate (seed 002 sec. 6.4: sigma'(x) = alpha / (2 (1 + (pi/2 alpha x)^2)))
SURROGATE_ALPHA = 4.0

_snn_cls: dict[str, Any] = {}


def _spike_fn():
    """Heaviside ``x >= 0`` (the IR's ``>=`` comparator) with the arctan surrogate gradient."""
    if "spike" in _snn_cls:
        return _snn_cls["spike"]
    torch = _torch()

    class _ATanSpike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, alpha: float):
            ctx.save_for_backward(x)
            ctx.alpha = alpha
            return (x >= 0).to(x.dtype)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            a = ctx.alpha
            return g * (a / 2.0) / (1.0 + (np.pi / 2.0 * a * x) ** 2), None

    _snn_cls["spike"] = _ATanSpike.apply
    return _snn_cls["spike"]


def psn_init_taps(k: int) -> np.ndarray:
    """Seed 002 eq. 17: ``W_i = 2**(i - k + 1)``, i = 0..k-1 (the last tap, on the current input, is 1)."""
    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"SlidingPSN: k must be a positive integer, not {k!r}")
    return 2.0 ** (np.arange(k) - k + 1)


def _make_sliding_psn():
    if "SlidingPSN" in _snn_cls:
        return _snn_cls["SlidingPSN"]
    torch = _torch()
    nn = torch.nn

    class SlidingPSN(nn.Module):
        """Sliding parallel spiking neuron layer, order k (seed 002 eq. 14-15).

        Input and output ``(T, B, *shape)``: ``H[t] = sum_{i<k} W_i X[t-k+1+i]`` with ``X[j] = 0``
        before the first step (zero padding), ``S[t] = (H[t] >= V_th)``. The k taps (``W_{k-1}``
        multiplies the current input) are one learnable vector shared by the layer's neurons,
        initialised by eq. 17 (``W_i = 2**(i-k+1)``); the threshold ``V_th`` is one learnable scalar
        (initially 1). No membrane, no reset. The Heaviside's gradient is the arctan surrogate with
        ``alpha`` (default :data:`SURROGATE_ALPHA`). Computed as ``H = A X`` with eq. 16's banded
        T x T matrix, so one forward handles the whole sequence.
        """

        def __init__(self, k: int = 4, threshold: float = 1.0, alpha: float = SURROGATE_ALPHA):
            super().__init__()
            self.k = int(k)
            self.alpha = float(alpha)
            self.taps = nn.Parameter(torch.as_tensor(psn_init_taps(self.k), dtype=torch.float32))
            self.threshold = nn.Parameter(torch.tensor(float(threshold)))

        def fir_matrix(self, T: int):
            """Eq. 16: ``A[t][j] = W_{k-1-t+j}`` for ``t-k+1 <= j <= t``, else 0; ``H = A X``."""
            t = torch.arange(T).unsqueeze(1)
            j = torch.arange(T).unsqueeze(0)
            idx = self.k - 1 - t + j
            valid = (idx >= 0) & (idx < self.k)
            return torch.where(valid, self.taps[idx.clamp(0, self.k - 1)], torch.zeros((), dtype=self.taps.dtype))

        def hidden(self, x):
            """``H`` of eq. 14 for a sequence ``x`` of shape (T, B, ...)."""
            T = x.shape[0]
            return (self.fir_matrix(T).to(x.dtype) @ x.reshape(T, -1)).reshape(x.shape)

        def forward(self, x):
            return _spike_fn()(self.hidden(x) - self.threshold, self.alpha)

        def extra_repr(self) -> str:
            return f"k={self.k}, threshold={float(self.threshold.detach()):.4g}"

    SlidingPSN.__module__ = __name__
    SlidingPSN.__qualname__ = "SlidingPSN"
    _snn_cls["SlidingPSN"] = SlidingPSN
    return SlidingPSN


def _make_lif():
    if "LIFNeuron" in _snn_cls:
        return _snn_cls["LIFNeuron"]
    torch = _torch()
    nn = torch.nn

    class LIFNeuron(nn.Module):
        """LIF layer with the PE's shift leak and soft reset (the IR's ``"lif"``; ``leak_shift = 0``: IF).

        Input and output ``(T, B, *shape)``, membrane 0 at the start: ``v = beta v + X[t]`` with
        ``beta = 1 - 2**-leak_shift`` (``leak_shift = 0``: ``beta = 1``), fire ``S[t] = (v >= V_th)``,
        soft reset ``v -= V_th S[t]``. ``V_th`` is a scalar, learnable when ``learn_threshold``.
        Trained by BPTT with the arctan surrogate; ``detach_reset`` (default True) stops the gradient
        through the reset, as seed 002's LIF baselines do. The forward values do not depend on it.
        """

        def __init__(self, leak_shift: int = 1, threshold: float = 1.0, *, learn_threshold: bool = True,
                     detach_reset: bool = True, alpha: float = SURROGATE_ALPHA):
            super().__init__()
            if not (isinstance(leak_shift, int) and leak_shift >= 0):
                raise ValueError(f"LIFNeuron: leak_shift must be a non-negative integer, not {leak_shift!r}")
            self.leak_shift = leak_shift
            self.detach_reset = bool(detach_reset)
            self.alpha = float(alpha)
            thr = torch.tensor(float(threshold))
            if learn_threshold:
                self.threshold = nn.Parameter(thr)
            else:
                self.register_buffer("threshold", thr)

        @property
        def beta(self) -> float:
            return 1.0 - 2.0 ** -self.leak_shift if self.leak_shift > 0 else 1.0

        def forward(self, x):
            spike = _spike_fn()
            v = torch.zeros_like(x[0])
            out = []
            for t in range(x.shape[0]):
                v = self.beta * v + x[t]
                s = spike(v - self.threshold, self.alpha)
                v = v - (s.detach() if self.detach_reset else s) * self.threshold
                out.append(s)
            return torch.stack(out)

        def extra_repr(self) -> str:
            return f"leak_shift={self.leak_shift}, threshold={float(self.threshold.detach()):.4g}"

    LIFNeuron.__module__ = __name__
    LIFNeuron.__qualname__ = "LIFNeuron"
    _snn_cls["LIFNeuron"] = LIFNeuron
    return LIFNeuron


_LAZY = {"ClipReLU": _make_clip_relu, "SlidingPSN": _make_sliding_psn, "LIFNeuron": _make_lif}


def __getattr__(name: str):
    # the modules are nn.Module subclasses: created (and torch imported) on first access
    if name in _LAZY:
        return _LAZY[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _leaves(module, qual: str = ""):
    """(qualified name, module) of a Sequential's children in order, nested Sequentials flattened."""
    nn = _torch().nn
    if type(module) is nn.Sequential:
        for child_name, child in module.named_children():
            yield from _leaves(child, f"{qual}.{child_name}" if qual else child_name)
    else:
        yield qual or "<root>", module


def _is_neuron(m) -> bool:
    return type(m) in (_make_sliding_psn(), _make_lif())


def sequence_forward(module, x):
    """Run a Sequential of weighted layers and :class:`SlidingPSN` / :class:`LIFNeuron` on a sequence.

    ``x``: (T, B, *frame_shape). Neuron modules see the whole sequence (T, B, ...); every other module
    is applied to each frame (time folded into the batch). The last layer's outputs are summed over
    time, like the IR's output integrator (``u_t = u_{t-1} + W s_t + b``); returns ``u``: (T, B, C),
    so ``u[t]`` is what the integrator holds after step ``t + 1``.
    """
    torch = _torch()
    T, b = x.shape[0], x.shape[1]
    h = x
    for _, m in _leaves(module):
        if _is_neuron(m):
            h = m(h)
        else:
            h = m(h.reshape((T * b,) + tuple(h.shape[2:])))
            h = h.reshape((T, b) + tuple(h.shape[1:]))
    return torch.cumsum(h, dim=0)


_SNN_SUPPORTED = "Sequential, Linear, Conv2d, Flatten, SlidingPSN, LIFNeuron, Dropout, Identity"


def snn_from_torch(module: Any, frame_shape: tuple[int, ...], *, name: str = "torch_snn",
                   input_max: float = 1.0):
    """The :class:`~atsnn.compiler.ir.FloatNetwork` of a directly trained SNN on sequences.

    ``module``: an ``nn.Sequential`` (nested Sequentials are flattened) of weighted layers
    (``nn.Linear``; ``nn.Conv2d`` with groups = dilation = 1, square stride and zero padding;
    ``nn.Flatten()`` between them), each followed by a neuron module -- :class:`SlidingPSN`
    (``neuron="psn"``, ``extra["psn"] = {"mode": "sliding", "k": k, "taps": [W_0..W_{k-1}]}``) or
    :class:`LIFNeuron` (``"lif"`` with ``beta = 1 - 2**-leak_shift``, soft reset; ``"if"`` for
    ``leak_shift = 0``) -- and ending in a weighted readout with no neuron after it, which becomes
    the non-firing output integrator (``neuron="integrator"``, summed over time as
    :func:`sequence_forward` does). Thresholds are the scalar ``V_th`` repeated per channel; ``v_init``
    is 0; layer ``i`` (0-based count of weighted layers) is named ``fc<i>`` or ``conv<i>``.

    ``frame_shape`` is the shape of one timestep's input (``(8,)`` for one row of an 8x8 digit);
    the network's ``input_encoding`` is ``"sequence"`` (one frame per timestep, docs/hardware.md
    sec. 11) and ``decisions["input_max"]`` is ``input_max`` (largest input value, for the
    quantizer). Anything else raises :class:`atsnn.errors.ConversionError` naming the module's
    qualified name and type.
    """
    from atsnn.compiler.ir import FloatLayer, FloatNetwork, FloatSynapse

    torch = _torch()
    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise ConversionError(f"snn_from_torch expects a torch.nn.Module, not {type(module).__name__}")
    if not input_max > 0:
        raise ConversionError(f"snn_from_torch: input_max must be positive, not {input_max!r}")
    PSN, LIF = _make_sliding_psn(), _make_lif()
    shape = tuple(int(s) for s in frame_shape)
    source = "input"
    pending = None  # (qual, synapse, out_shape, bias) of a weighted layer waiting for its neuron
    flatten = False
    layers: list = []
    n_weighted = 0
    for qual, m in _leaves(module):
        kind = type(m).__name__
        if type(m) in (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity):
            continue
        if type(m) in (nn.Linear, nn.Conv2d):
            if pending is not None:
                raise ConversionError(f"{_where(qual, kind)} follows the weighted layer '{pending[0]}' with no "
                                      "neuron in between (put a SlidingPSN or LIFNeuron after every hidden layer)")
            if type(m) is nn.Linear:
                in_shape = (int(np.prod(shape)),) if flatten else shape
                if len(in_shape) != 1 or in_shape[0] != m.in_features:
                    raise ConversionError(f"{_where(qual, kind)}: expects {m.in_features} input features, gets "
                                          f"shape {shape}" + ("" if flatten or len(shape) == 1 else
                                                              " (add nn.Flatten() before it)"))
                syn = FloatSynapse(source=source, op="dense", weight=_np(m.weight), input_shape=in_shape,
                                   flatten=flatten and len(shape) > 1)
                out_shape = (m.out_features,)
                lname = f"fc{n_weighted}"
            else:
                if flatten:
                    raise ConversionError(f"{_where(qual, kind)}: a convolution cannot follow nn.Flatten()")
                spec = _conv_spec(m, qual)
                if len(shape) != 3 or shape[0] != m.in_channels:
                    raise ConversionError(f"{_where(qual, kind)}: expects ({m.in_channels}, H, W) inputs, gets "
                                          f"shape {shape}")
                from atsnn.compiler.convert import conv_out_shape
                st, pd = (spec.stride, spec.stride), (spec.padding, spec.padding)
                syn = FloatSynapse(source=source, op="conv2d", weight=spec.weight, input_shape=shape, stride=st,
                                   padding=pd)
                out_shape = conv_out_shape(shape, spec.weight.shape, st, pd)
                lname = f"conv{n_weighted}"
            bias = np.zeros(out_shape[0]) if m.bias is None else _np(m.bias)
            pending = (qual, lname, syn, tuple(out_shape), bias)
            n_weighted += 1
            flatten = False
            continue
        if type(m) is nn.Flatten:
            if m.start_dim != 1 or m.end_dim != -1:
                raise ConversionError(f"{_where(qual, kind)}: only Flatten(start_dim=1, end_dim=-1) is supported, "
                                      f"not start_dim={m.start_dim}, end_dim={m.end_dim}")
            if pending is not None:
                raise ConversionError(f"{_where(qual, kind)}: flatten between the weighted layer '{pending[0]}' "
                                      "and its neuron is not supported")
            flatten = True
            continue
        if type(m) in (PSN, LIF):
            if pending is None:
                raise ConversionError(f"{_where(qual, kind)}: a neuron layer needs a weighted layer (Linear or "
                                      "Conv2d) directly before it")
            wqual, lname, syn, out_shape, bias = pending
            thr = float(m.threshold.detach())
            if not thr > 0:
                raise ConversionError(f"{_where(qual, kind)}: threshold must be positive, not {thr!r}")
            c = out_shape[0]
            common = dict(name=lname, shape=out_shape, synapses=[syn], bias=bias, threshold=np.full(c, thr),
                          v_init=np.zeros(c), reset="subtract", comparator=">=")
            if type(m) is PSN:
                taps = [float(v) for v in _np(m.taps)]
                layers.append(FloatLayer(neuron="psn", extra={"psn": {"mode": "sliding", "k": len(taps),
                                                                       "taps": taps}}, **common))
            else:
                layers.append(FloatLayer(neuron="lif" if m.leak_shift > 0 else "if", beta=m.beta, **common))
            source, shape, pending = lname, out_shape, None
            continue
        raise ConversionError(f"{_where(qual, kind)} is not supported by the torch SNN front end "
                              f"(supported: {_SNN_SUPPORTED})")
    if pending is None:
        raise ConversionError("snn_from_torch: the module must end with a weighted readout layer (Linear or Conv2d) "
                              "with no neuron after it: it becomes the output integrator")
    if not layers:
        raise ConversionError("snn_from_torch: the module has no neuron layer (SlidingPSN or LIFNeuron)")
    if flatten:
        raise ConversionError("snn_from_torch: nn.Flatten() at the end of the module has no weighted layer after it")
    _, lname, syn, out_shape, bias = pending
    c = out_shape[0]
    layers.append(FloatLayer(name=lname, neuron="integrator", shape=out_shape, synapses=[syn], bias=bias,
                             threshold=np.ones(c), v_init=np.zeros(c)))
    return FloatNetwork(name=name, input_shape=tuple(int(s) for s in frame_shape), layers=layers,
                        output=lname, input_encoding="sequence",
                        decisions={"frontend": "torch snn_from_torch", "input_max": float(input_max)})
