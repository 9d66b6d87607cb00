"""Exact integer synaptic operations for the fast engine (float32 GEMM on integer values).

The numeric contract bounds every accumulator below ``2**(accumulator_bits-1)``
and the compiler proves it, so all partial sums stay below 2**24 and float32
products and sums of these integers are exact (checked in
:func:`apply_synapse`). Layouts follow PyTorch (``atsnn.program.Synapse``).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

EXACT_LIMIT = float(1 << 24)


def sum_pool(x: np.ndarray, kernel, stride, padding) -> np.ndarray:
    """Sum-pooling of (B, C, H, W)."""
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    b, c, h, w = x.shape
    if (kh, kw) == (sh, sw) and h % kh == 0 and w % kw == 0:
        return x.reshape(b, c, h // kh, kh, w // kw, kw).sum(axis=(3, 5))
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return win.sum(axis=(4, 5))


def conv2d(x: np.ndarray, w: np.ndarray, stride, padding) -> np.ndarray:
    """(B, Cin, H, W) x (Cout, Cin, kh, kw) -> (B, Cout, Ho, Wo) via im2col + GEMM (float32)."""
    cout, cin, kh, kw = w.shape
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]  # B,C,Ho,Wo,kh,kw
    b, _, ho, wo = win.shape[:4]
    cols = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(b * ho * wo, cin * kh * kw)
    out = cols @ w.reshape(cout, -1).T.astype(np.float32)
    return out.reshape(b, ho, wo, cout).transpose(0, 3, 1, 2)


def conv_transpose2d(x: np.ndarray, w: np.ndarray, stride, padding, output_padding) -> np.ndarray:
    """(B, Cin, H, W) x (Cin, Cout, kh, kw) -> (B, Cout, Ho, Wo), PyTorch semantics."""
    cin, cout, kh, kw = w.shape
    b, _, h, wd = x.shape
    sh, sw = stride
    if sh > 1 or sw > 1:
        z = np.zeros((b, cin, (h - 1) * sh + 1, (wd - 1) * sw + 1), dtype=x.dtype)
        z[:, :, ::sh, ::sw] = x
        x = z
    ph, pw = kh - 1 - padding[0], kw - 1 - padding[1]
    if ph < 0 or pw < 0:
        raise ValueError("conv_transpose2d padding larger than kernel - 1 is not supported")
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph + output_padding[0]), (pw, pw + output_padding[1])))
    wf = np.flip(w, axis=(2, 3)).transpose(1, 0, 2, 3)
    return conv2d(x, np.ascontiguousarray(wf), (1, 1), (0, 0))


def synapse_input(syn, src: np.ndarray) -> np.ndarray:
    """Apply the synapse's pool and flatten pre-ops to the source map (B, *shape)."""
    x = src
    if syn.pool is not None:
        x = sum_pool(x, syn.pool.kernel, syn.pool.stride, syn.pool.padding)
    if syn.flatten:
        x = x.reshape(x.shape[0], -1)
    return x


def apply_synapse(syn, x: np.ndarray, w32: np.ndarray) -> np.ndarray:
    """Integer current of one synapse for input x (B, *input_shape), as float32 holding exact integers."""
    x = x.astype(np.float32, copy=False)
    if syn.op == "dense":
        out = x.reshape(x.shape[0], -1) @ w32.T
    elif syn.op == "conv2d":
        out = conv2d(x, w32, syn.stride, syn.padding)
    else:
        out = conv_transpose2d(x, w32, syn.stride, syn.padding, syn.output_padding)
    return out
