"""PyTorch front end: an ``nn.Module`` ANN -> :mod:`compiler.convert` layer specs -> float SNN.

:func:`ann_from_torch` walks an ``nn.Sequential`` (nested Sequentials are flattened in order) and
turns each supported module into the numpy spec :func:`compiler.convert.convert` takes:

=====================================  ==========================================================
``nn.Conv2d``                          :class:`~compiler.convert.Conv` (groups = dilation = 1, square
                                       stride and zero padding; ``padding="valid"`` or ``"same"``)
``nn.Linear``                          :class:`~compiler.convert.Dense`
``nn.BatchNorm2d`` / ``nn.BatchNorm1d``  :class:`~compiler.convert.BatchNorm` (running statistics;
                                       folded into the layer before by the converter)
``nn.ReLU``                            :class:`~compiler.convert.ReLU`
:class:`ClipReLU` (below)              :class:`~compiler.convert.Clip` (trained threshold lambda)
``nn.AvgPool2d``                       :class:`~compiler.convert.AvgPool` (square, no padding)
``nn.Flatten``                         :class:`~compiler.convert.Flatten` (``start_dim=1, end_dim=-1``)
``nn.Dropout*``, ``nn.Identity``       skipped (identity at inference)
=====================================  ==========================================================

Anything else (max pooling, GELU, custom modules, grouped or dilated convolutions, rectangular
strides, ...) raises :class:`atsnn.errors.ConversionError` naming the module's qualified name
(as in ``module.named_modules()``) and its type. :func:`convert_torch` then runs the same
:func:`compiler.convert.convert` as the numpy path, so a torch model and a numpy spec with the same
weights give the same :class:`~compiler.ir.FloatNetwork`.

PyTorch is an optional dependency (``pip install 'atsnn[torch]'``): importing this module does not
import it; calling :func:`ann_from_torch` / :func:`convert_torch` or touching :class:`ClipReLU`
without PyTorch raises an ``ImportError`` that says how to install it.
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


def __getattr__(name: str):
    # ClipReLU is an nn.Module subclass, so it is created (and torch imported) on first access
    if name == "ClipReLU":
        return _make_clip_relu()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    from compiler.convert import Conv

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
    from compiler.convert import BatchNorm

    kind = type(m).__name__
    if m.running_mean is None or m.running_var is None:
        raise ConversionError(f"{_where(qual, kind)}: needs running statistics (track_running_stats=True)")
    c = m.num_features
    gamma = _np(m.weight) if m.weight is not None else np.ones(c)
    beta = _np(m.bias) if m.bias is not None else np.zeros(c)
    return BatchNorm(gamma=gamma, beta=beta, mean=_np(m.running_mean), var=_np(m.running_var), eps=float(m.eps))


def _pool_spec(m, qual: str):
    from compiler.convert import AvgPool

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
    from compiler.convert import Clip, Dense, Flatten, ReLU

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
    """The :mod:`compiler.convert` layer specs of a torch ANN (see the module docstring).

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
    """``compiler.convert.convert(ann_from_torch(module), input_shape, calib, **convert_kwargs)``.

    ``calib`` may be a numpy array or a torch tensor of shape (n, *input_shape).
    """
    from compiler.convert import convert

    torch = _torch()
    if isinstance(calib, torch.Tensor):
        calib = _np(calib)
    return convert(ann_from_torch(module), tuple(input_shape), calib, **convert_kwargs)
