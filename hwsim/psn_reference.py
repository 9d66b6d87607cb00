"""Plain numpy reference of the sliding-PSN update (docs/hardware.md sec. 11).

The golden model for hwsim's PSN kernel and the RTL PE's PSN mode: integer numpy, vectorised,
written for clarity rather than speed.
"""

from __future__ import annotations

import numpy as np


def psn_update(hist: np.ndarray, acc: np.ndarray, bias: np.ndarray | int, *, taps, shift: int, threshold: int,
               comparator: str, vmin: int, vmax: int):
    """One step of a sliding-PSN layer for a vector (or batch) of neurons.

    ``hist`` has shape ``(..., k - 1)``: the clamped input currents ``x[t-k+1], ..., x[t-1]``,
    oldest first (0 before the first timestep). ``acc`` is the exact accumulator of this
    timestep (sec. 3), ``bias`` the per-neuron bias.

    1. ``x = clamp(acc + bias, vmin, vmax)`` (the membrane range; a clamp is a saturation);
    2. ``H = sum_{i<k-1} taps[i] * hist[i] + taps[k-1] * x``, exact;
    3. fire ``z = (H >> shift) >= threshold`` (or ``>``), ``>>`` arithmetic;
    4. the history drops its oldest entry and appends ``x``.

    Returns ``(hist_next, spikes, sat_hi, sat_lo, H)``.
    """
    hist = np.asarray(hist, dtype=np.int64)
    taps = np.asarray(taps, dtype=np.int64)
    k = taps.shape[0]
    if hist.shape[-1] != k - 1:
        raise ValueError(f"history has {hist.shape[-1]} entries, a {k}-tap PSN keeps {k - 1}")
    s = np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    sat_hi = s > vmax
    sat_lo = s < vmin
    x = np.clip(s, vmin, vmax)
    h = taps[k - 1] * x
    for i in range(k - 1):
        h = h + taps[i] * hist[..., i]
    hs = h >> shift
    fire = (hs >= threshold) if comparator == ">=" else (hs > threshold)
    if k > 1:
        hist_next = np.concatenate([hist[..., 1:], x[..., None]], axis=-1)
    else:
        hist_next = hist.copy()
    return hist_next.astype(np.int64), fire.astype(np.uint8), sat_hi, sat_lo, h.astype(np.int64)


def fir_bound(taps, vmin: int, vmax: int) -> int:
    """Largest ``|H|`` a layer with these taps can produce: ``sum |taps| * max(|vmin|, vmax)``."""
    return int(np.abs(np.asarray(taps, dtype=np.int64)).sum()) * max(-int(vmin), int(vmax))
