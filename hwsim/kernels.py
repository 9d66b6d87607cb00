"""Numba kernels of the neuron update (contract sec. 4-5).

``neuron_update_batch`` updates a batch of membranes in place from exact
accumulators and returns per-sample spike and saturation counts. It must
agree bit for bit with :func:`atsnn.hwsim.reference.neuron_update`; tests also run
it with ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def neuron_update_batch(v, acc, bias_n, threshold_n, current_shift, leak_shift, fire_enabled, subtract, v_reset,
                        ge, vmin, vmax, spikes_out, counts_out):
    """In place: ``v`` (B, N) int64; ``acc`` (B, N) int64, or float32/float64 holding exact integers
    (the engine's accumulator, converted per element); ``bias_n`` and ``threshold_n`` (N,) int64; the
    current enters as ``(acc + r) >> current_shift`` with ``r = 2**(current_shift - 1)`` (0 if no shift).

    Writes ``spikes_out`` (B, N) uint8 and ``counts_out`` (B, 3) int64 =
    (spikes, upper saturations, lower saturations).
    """
    nb, nn = v.shape
    rnd = np.int64(0)
    if current_shift > 0:
        rnd = np.int64(1) << (current_shift - 1)
    for b in range(nb):
        ns = 0
        hi = 0
        lo = 0
        for n in range(nn):
            x = v[b, n]
            if leak_shift > 0:
                x = x - (x >> leak_shift)
            a = np.int64(acc[b, n])
            if current_shift > 0:
                a = (a + rnd) >> current_shift
            s = x + a + bias_n[n]
            threshold = threshold_n[n]
            if s > vmax:
                s = vmax
                hi += 1
            elif s < vmin:
                s = vmin
                lo += 1
            fire = False
            if fire_enabled:
                if ge:
                    fire = s >= threshold
                else:
                    fire = s > threshold
            if fire:
                ns += 1
                if subtract:
                    s = s - threshold
                else:
                    s = v_reset
                spikes_out[b, n] = 1
            else:
                spikes_out[b, n] = 0
            v[b, n] = s
        counts_out[b, 0] = ns
        counts_out[b, 1] = hi
        counts_out[b, 2] = lo


def update_layer(layer, hw, v: np.ndarray, acc: np.ndarray, bias_n: np.ndarray):
    """Run the kernel for one layer; returns (spikes (B, N) uint8, counts (B, 3))."""
    integrator = layer.neuron == "integrator"
    if integrator:  # the output integrator's membrane is the AT unit's width, wherever it is mapped
        vmin, vmax = hw.at_membrane_min, hw.at_membrane_max
    else:
        vmin, vmax = hw.membrane_min, hw.membrane_max
    spikes = np.empty(v.shape, dtype=np.uint8)
    counts = np.zeros((v.shape[0], 3), dtype=np.int64)
    thr = np.zeros(v.shape[1], dtype=np.int64) if integrator else layer.neuron_thresholds()
    neuron_update_batch(v, acc, bias_n, thr, np.int64(layer.current_shift), np.int64(layer.leak_shift),
                        not integrator, layer.reset == "subtract", np.int64(layer.v_reset),
                        layer.comparator == ">=", np.int64(vmin), np.int64(vmax), spikes, counts)
    return spikes, counts
