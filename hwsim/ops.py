"""Exact integer synaptic operations for the fast engine (float32 GEMM on integer values).

The numeric contract bounds every accumulator below ``2**(accumulator_bits-1)``
and the compiler proves it, so all partial sums stay below 2**24 and float32
products and sums of these integers are exact (checked in
:func:`apply_synapse`). Layouts follow PyTorch (``atsnn.program.Synapse``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.lib.stride_tricks import sliding_window_view

from atsnn.config import EXACT_SUM_BITS

EXACT_LIMIT = float(1 << EXACT_SUM_BITS)
#: an input map sparser than this (fraction of non-zero entries) goes through the event-driven
#: convolution; denser maps (pixels, busy layers) through im2col + GEMM. Both are exact; the
#: crossover was measured with ``benchmarks/bench_hwsim.py`` on VGG16 layers.
EVENT_DENSITY_MAX = 0.35
_WT_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}
_WT_CACHE_MAX = 256


def sum_pool(x: np.ndarray, kernel, stride, padding) -> np.ndarray:
    """Sum-pooling of (B, C, H, W) with zero padding; the dtype of ``x.sum()`` (exact for integers).

    Adds the ``kh * kw`` strided views of the window offsets into one output array (no window
    reduction over non-contiguous axes, no per-call temporaries beyond the output)."""
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    b, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((b, c, ho, wo), dtype=np.empty(0, x.dtype).sum().dtype)
    for di in range(kh):
        for dj in range(kw):
            out += x[:, :, di:di + sh * (ho - 1) + 1:sh, dj:dj + sw * (wo - 1) + 1:sw]
    return out


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


@njit(parallel=True, cache=True)
def _conv_events_kernel(x, wt, sh, sw, ph, pw, out):
    """Scatter every non-zero input ``v`` at (b, c, y, x) as ``v * wt[c, ky, kx, :]`` into ``out`` (B, Ho, Wo, Cout).

    The same sum as the convolution (each output gathers ``w[co, c, ky, kx] * x[c, oy*sh + ky - ph, ...]``),
    visited from the inputs' side: work is proportional to the non-zero inputs, as on the array.
    """
    nb, cin, h, w = x.shape
    kh, kw, cout = wt.shape[1], wt.shape[2], wt.shape[3]
    ho, wo = out.shape[1], out.shape[2]
    for b in prange(nb):
        ob = out[b]
        for y in range(h):
            for xx in range(w):
                for c in range(cin):  # the channels of one position update the same output rows
                    v = x[b, c, y, xx]
                    if v == 0:
                        continue
                    fv = np.float32(v)
                    for ky in range(kh):
                        ty = y + ph - ky
                        if ty < 0 or ty % sh != 0:
                            continue
                        oy = ty // sh
                        if oy >= ho:
                            continue
                        for kx in range(kw):
                            tx = xx + pw - kx
                            if tx < 0 or tx % sw != 0:
                                continue
                            ox = tx // sw
                            if ox >= wo:
                                continue
                            orow = ob[oy, ox]
                            wrow = wt[c, ky, kx]
                            for co in range(cout):
                                orow[co] += fv * wrow[co]


def _weights_cin_major(w: np.ndarray) -> np.ndarray:
    """``w`` (Cout, Cin, kh, kw) as a contiguous (Cin, kh, kw, Cout) float32 copy, cached per weight array."""
    hit = _WT_CACHE.get(id(w))
    if hit is not None and hit[0] is w:
        return hit[1]
    wt = np.ascontiguousarray(w.transpose(1, 2, 3, 0), dtype=np.float32)
    if len(_WT_CACHE) >= _WT_CACHE_MAX:
        _WT_CACHE.pop(next(iter(_WT_CACHE)))
    _WT_CACHE[id(w)] = (w, wt)  # the reference keeps id(w) from being reused while cached
    return wt


def conv2d_events(x: np.ndarray, w: np.ndarray, stride, padding) -> np.ndarray:
    """Event-driven convolution of a non-negative integer map: same result as :func:`conv2d`, exactly.

    ``x`` (B, Cin, H, W) integer counts, ``w`` (Cout, Cin, kh, kw) float32 holding integers. Returns
    (B, Cout, Ho, Wo) float32 (exact below ``EXACT_LIMIT``, which the contract guarantees).
    """
    cout, _, kh, kw = w.shape
    b, _, h, wd = x.shape
    ho = (h + 2 * padding[0] - kh) // stride[0] + 1
    wo = (wd + 2 * padding[1] - kw) // stride[1] + 1
    out = np.zeros((b, ho, wo, cout), dtype=np.float32)
    xi = x if x.dtype.kind in "iu" else x.astype(np.uint8)
    _conv_events_kernel(np.ascontiguousarray(xi), _weights_cin_major(w), int(stride[0]), int(stride[1]),
                        int(padding[0]), int(padding[1]), out)
    return out.transpose(0, 3, 1, 2)


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
    if syn.op == "conv2d" and x.dtype.kind in "iub" and x.size and \
            np.count_nonzero(x) <= EVENT_DENSITY_MAX * x.size:
        return conv2d_events(x, w32, syn.stride, syn.padding)
    x = x.astype(np.float32, copy=False)
    if syn.op == "dense":
        out = x.reshape(x.shape[0], -1) @ w32.T
    elif syn.op == "conv2d":
        out = conv2d(x, w32, syn.stride, syn.padding)
    else:
        out = conv_transpose2d(x, w32, syn.stride, syn.padding, syn.output_padding)
    return out
