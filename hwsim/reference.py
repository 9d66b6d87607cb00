"""Plain numpy reference of the numeric contract (docs/hardware.md).

This is the golden model: hwsim's Numba kernels and the RTL are tested
against these functions bit for bit. Everything is integer numpy
(``int64``), vectorised, written for clarity rather than speed.

Neuron-level primitives (contract sec. 4-5) are here; the network-level
reference (events, layers, timesteps) builds on them.
"""

from __future__ import annotations

import math

import numpy as np

from atsnn.config import HardwareConfig


# --------------------------------------------------------------------------- PE neuron (sec. 4)
def leak(v: np.ndarray, leak_shift: int) -> np.ndarray:
    """``v - (v >> k)`` with arithmetic shift; ``k = 0`` means no leak."""
    v = np.asarray(v, dtype=np.int64)
    if leak_shift == 0:
        return v.copy()
    return v - (v >> leak_shift)


def neuron_update(v: np.ndarray, acc: np.ndarray, bias: np.ndarray | int, *, threshold: int, leak_shift: int,
                  reset: str, v_reset: int, comparator: str, vmin: int, vmax: int):
    """One PE update step for a vector of neurons.

    Returns ``(v_next, spikes, sat_hi, sat_lo)``: new membranes (int64),
    spike flags (uint8) and saturation flags (bool) for the upper and lower
    clamp. ``acc`` is the exact accumulator (sec. 3).
    """
    v1 = leak(v, leak_shift)
    s = v1 + np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    sat_hi = s > vmax
    sat_lo = s < vmin
    v2 = np.clip(s, vmin, vmax)
    fire = (v2 >= threshold) if comparator == ">=" else (v2 > threshold)
    if reset == "subtract":
        v_next = np.where(fire, v2 - threshold, v2)
    else:
        v_next = np.where(fire, np.int64(v_reset), v2)
    return v_next.astype(np.int64), fire.astype(np.uint8), sat_hi, sat_lo


def integrator_update(u: np.ndarray, acc: np.ndarray, bias: np.ndarray | int, *, leak_shift: int,
                      umin: int, umax: int):
    """Output integrator (sec. 5): no reset, no firing. Returns ``(u_next, sat_hi, sat_lo)``."""
    u1 = leak(u, leak_shift)
    s = u1 + np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    return np.clip(s, umin, umax).astype(np.int64), s > umax, s < umin


# --------------------------------------------------------------------------- AT unit (sec. 5)
def exp_table(hw: HardwareConfig) -> np.ndarray:
    """``T[j] = round(exp(-j * D / (E - 1)) * ONE)`` as int64."""
    e = hw.at.exp_table_entries
    x = np.arange(e, dtype=np.float64) * (hw.at.exp_input_range / (e - 1))
    return np.rint(np.exp(-x) * hw.exp_one).astype(np.int64)


def exp_constants(hw: HardwareConfig, out_scale: float, logit_scale: float = 1.0) -> tuple[int, int]:
    """``(exp_mult, d_clip)`` for an output layer of real scale ``out_scale`` (sec. 7)."""
    e, f, sb = hw.at.exp_table_entries, hw.at.exp_index_frac_bits, hw.at.exp_scale_bits
    mult = int(round(out_scale * logit_scale * (e - 1) / hw.at.exp_input_range * 2 ** (sb + f)))
    if mult < 1:
        raise ValueError("output scale too small for the exp-table index multiplier")
    d_clip = int(math.ceil((e - 1) * 2 ** (f + sb) / mult))
    return mult, d_clip


def at_sigma(u: np.ndarray, table: np.ndarray, *, exp_mult: int, d_clip: int, hw: HardwareConfig):
    """Eq. 17 on ``u - max(u)``: integer sigma per class (last axis), and argmax.

    Returns ``(sigma, winner)``; works on ``(..., C)`` arrays.
    """
    u = np.asarray(u, dtype=np.int64)
    m = u.max(axis=-1, keepdims=True)
    winner = u.argmax(axis=-1)
    d = np.minimum(m - u, d_clip)
    idx = (d * exp_mult) >> hw.at.exp_scale_bits
    f = hw.at.exp_index_frac_bits
    j = idx >> f
    frac = idx & ((1 << f) - 1)
    e = hw.at.exp_table_entries
    jj = np.minimum(j, e - 2)
    t0 = table[jj]
    t1 = table[jj + 1]
    sig = t0 - (((t0 - t1) * frac) >> f)
    sig = np.where(j >= e - 1, 0, sig)
    return sig.astype(np.int64), winner


def cl_sequence(cl_init: float, tau_cl: float, steps: int, hw: HardwareConfig) -> np.ndarray:
    """``CL_t`` for t = 1..steps as Q``cl_frac_bits`` integers (eq. 15, running product)."""
    q = hw.at.cl_frac_bits
    cl = int(round(cl_init * (1 << q)))
    tau = int(round(tau_cl * (1 << q)))
    out = np.empty(steps, dtype=np.int64)
    for t in range(steps):
        out[t] = cl
        cl = (cl * tau) >> q
    return out


def at_exit(sigma_sum: np.ndarray | int, cl_t: np.ndarray | int, hw: HardwareConfig):
    """Eq. 18 in integers: exit when ``ONE * 2**Q > CL_t * S``."""
    return (hw.exp_one << hw.at.cl_frac_bits) > np.asarray(cl_t, dtype=np.int64) * np.asarray(sigma_sum,
                                                                                               dtype=np.int64)
