"""Numba kernel of the sliding-PSN update (docs/hardware.md sec. 11).

``psn_update_batch`` updates a batch of PSN neurons in place from exact accumulators. It must agree
bit for bit with :func:`atsnn.hwsim.psn_reference.psn_update` (tests also run it with
``NUMBA_DISABLE_JIT=1``). The history of a layer is an ``(B, N, k - 1)`` int64 array of the stored
currents ``x[t-k+1] .. x[t-1]``, oldest first, zero before the first timestep.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from atsnn import psn


@njit(cache=True)
def psn_update_batch(hist, acc, bias_n, taps, shift, threshold, ge, vmin, vmax, spikes_out, counts_out):
    """In place: ``hist`` (B, N, k-1) int64; ``acc`` (B, N) int64; ``bias_n`` (N,) int64; ``taps`` (k,) int64.

    Per neuron: ``x = clamp(acc + bias, vmin, vmax)``; ``H = sum_{i<k-1} taps[i] * hist[i] + taps[k-1] * x``;
    fire ``(H >> shift) >= threshold`` (``>`` when ``ge`` is false); the history drops its oldest entry and
    appends ``x``. Writes ``spikes_out`` (B, N) uint8 and ``counts_out`` (B, 3) int64 = (spikes, upper
    saturations, lower saturations).
    """
    nb, nn = acc.shape
    k = taps.shape[0]
    for b in range(nb):
        ns = 0
        hi = 0
        lo = 0
        for n in range(nn):
            x = acc[b, n] + bias_n[n]
            if x > vmax:
                x = vmax
                hi += 1
            elif x < vmin:
                x = vmin
                lo += 1
            h = taps[k - 1] * x
            for i in range(k - 1):
                h += taps[i] * hist[b, n, i]
            hs = h >> shift
            if ge:
                fire = hs >= threshold
            else:
                fire = hs > threshold
            if fire:
                ns += 1
                spikes_out[b, n] = 1
            else:
                spikes_out[b, n] = 0
            for i in range(k - 2):
                hist[b, n, i] = hist[b, n, i + 1]
            if k > 1:
                hist[b, n, k - 2] = x
        counts_out[b, 0] = ns
        counts_out[b, 1] = hi
        counts_out[b, 2] = lo


def initial_history(layer, batch: int) -> np.ndarray:
    """Zero history ``(batch, N, k - 1)`` of a PSN layer at the start of an inference."""
    return np.zeros((batch, layer.neurons, psn.history_entries(layer)), dtype=np.int64)


def update_psn_layer(layer, hw, hist: np.ndarray, acc: np.ndarray, bias_n: np.ndarray):
    """Run the kernel for one PSN layer (``hist`` updated in place); returns (spikes (B, N) uint8, counts (B, 3))."""
    p = psn.layer_params(layer)
    spikes = np.empty(acc.shape, dtype=np.uint8)
    counts = np.zeros((acc.shape[0], 3), dtype=np.int64)
    psn_update_batch(hist, np.ascontiguousarray(acc, dtype=np.int64), np.asarray(bias_n, dtype=np.int64),
                     np.asarray(p["taps"], dtype=np.int64), np.int64(p["shift"]), np.int64(layer.threshold),
                     layer.comparator == ">=", np.int64(hw.membrane_min), np.int64(hw.membrane_max), spikes, counts)
    return spikes, counts


def update_cycles_per_neuron(layer, hw) -> int:
    """Cycles of one neuron update: ``cycles.update`` plus ``k * cycles.psn_tap`` for a PSN layer (sec. 11)."""
    if psn.is_psn_layer(layer):
        return hw.cycles.update + psn.k_of(layer) * hw.cycles.psn_tap
    return hw.cycles.at_update if layer.mapping is not None and layer.mapping.unit == "at" else hw.cycles.update
