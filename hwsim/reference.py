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


def shifted_current(acc, current_shift: int) -> np.ndarray:
    """``(a + r) >> c`` with ``r = 2**(c - 1)`` (``a`` itself for ``c = 0``): sec. 2, round to nearest."""
    a = np.asarray(acc, dtype=np.int64)
    if current_shift == 0:
        return a
    return (a + (1 << (current_shift - 1))) >> current_shift


def neuron_update(v: np.ndarray, acc: np.ndarray, bias: np.ndarray | int, *, threshold, leak_shift: int,
                  reset: str, v_reset: int, comparator: str, vmin: int, vmax: int, current_shift: int = 0):
    """One PE update step for a vector of neurons.

    Returns ``(v_next, spikes, sat_hi, sat_lo)``: new membranes (int64),
    spike flags (uint8) and saturation flags (bool) for the upper and lower
    clamp. ``acc`` is the exact accumulator (sec. 3); ``threshold`` an int or one per neuron.
    """
    v1 = leak(v, leak_shift)
    threshold = np.asarray(threshold, dtype=np.int64)
    s = v1 + shifted_current(acc, current_shift) + np.asarray(bias, dtype=np.int64)
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


# --------------------------------------------------------------------------- network level (sec. 3, 6)
def _ref_pool(x: np.ndarray, pool) -> np.ndarray:
    kh, kw = pool.kernel
    sh, sw = pool.stride
    ph, pw = pool.padding
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    b, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((b, c, oh, ow), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            out += x[:, :, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw]
    return out


def _ref_conv(x: np.ndarray, w: np.ndarray, stride, padding) -> np.ndarray:
    """Integer conv2d by summing shifted products over kernel offsets (int64, no GEMM)."""
    cout, cin, kh, kw = w.shape
    ph, pw = padding
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    b, _, h, wd = x.shape
    oh, ow = (h - kh) // stride[0] + 1, (wd - kw) // stride[1] + 1
    out = np.zeros((b, cout, oh, ow), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            patch = x[:, :, ky:ky + stride[0] * (oh - 1) + 1:stride[0], kx:kx + stride[1] * (ow - 1) + 1:stride[1]]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, ky, kx].astype(np.int64))
    return out


def _ref_conv_transpose(x: np.ndarray, w: np.ndarray, stride, padding, output_padding) -> np.ndarray:
    """Integer transposed conv by scattering every input position (PyTorch semantics)."""
    cin, cout, kh, kw = w.shape
    b, _, h, wd = x.shape
    oh = (h - 1) * stride[0] - 2 * padding[0] + kh + output_padding[0]
    ow = (wd - 1) * stride[1] - 2 * padding[1] + kw + output_padding[1]
    full = np.zeros((b, cout, (h - 1) * stride[0] + kh + output_padding[0],
                     (wd - 1) * stride[1] + kw + output_padding[1]), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            contrib = np.einsum("bchw,co->bohw", x, w[:, :, ky, kx].astype(np.int64))
            full[:, :, ky:ky + stride[0] * (h - 1) + 1:stride[0], kx:kx + stride[1] * (wd - 1) + 1:stride[1]] += contrib
    return full[:, :, padding[0]:padding[0] + oh, padding[1]:padding[1] + ow]


def _ref_reach(syn, layer_shape, pos: int) -> np.ndarray:
    """Flat output neurons reached by an event at input position ``pos`` (all of them for dense)."""
    if syn.op == "dense":
        return np.arange(int(np.prod(layer_shape)))
    cout, oh, ow = layer_shape
    _, ih, iw = syn.input_shape
    y, x = divmod(pos, iw)
    kh, kw = syn.weight.shape[2], syn.weight.shape[3]
    sh, sw = syn.stride
    ph, pw = syn.padding
    outs = []
    for ky in range(kh):
        for kx in range(kw):
            if syn.op == "conv2d":
                ny, nx = y + ph - ky, x + pw - kx
                if ny % sh or nx % sw:
                    continue
                oy, ox = ny // sh, nx // sw
            else:
                oy, ox = y * sh - ph + ky, x * sw - pw + kx
            if 0 <= oy < oh and 0 <= ox < ow:
                outs.append(oy * ow + ox)
    sp = np.unique(np.array(outs, dtype=np.int64))
    return (np.arange(cout)[:, None] * (oh * ow) + sp[None, :]).ravel()


def _ref_pass_ranges(layer):
    m = layer.mapping
    chunks = np.asarray(m.chunk_sizes, dtype=np.int64)
    start = 0
    per_pe = []
    for c in chunks:
        base, extra = divmod(int(c), m.passes)
        sizes = [base + (j < extra) for j in range(m.passes)]
        s, rng = start, []
        for z in sizes:
            rng.append((s, s + z))
            s += z
        per_pe.append(rng)
        start += int(c)
    return [[per_pe[p][j] for p in range(len(chunks))] for j in range(m.passes)]


def _ref_synapse(syn, src: np.ndarray, layer_shape, ranges, cyc, *, pixels: bool):
    """One synapse in one step, literally (sec. 3, 6):
    ``(current, events, synops, compute_cycles, deliveries, busy)``.

    ``src`` is the step's integer input from the synapse's source, ``(S, *source shape)``: multi-bit
    pixels when ``pixels`` (an event per set bit, at its bit plane) or 0/1 spikes. It is pooled and
    flattened as the synapse says; the current is the exact int64 dense / conv / transposed-conv sum,
    ``(S, neurons)``. The counts are ``(S,)`` int64, enumerated event by event: events per input
    position (one per spike or set bit, over the channels), synops = events x the neurons an event
    reaches (:func:`_ref_reach`), and per event and pass (``ranges`` from :func:`_ref_pass_ranges`)
    ``cycles.event + cycles.synop x`` the most neurons it reaches in one PE, if it reaches any there.
    ``deliveries`` ``(S,)`` counts, per event and pass, the PEs it reaches (each takes it into its input
    buffer); ``busy`` ``(PEs,)``, summed over the samples, gives each PE ``cycles.event + cycles.synop x``
    its own reached neurons for every event and pass that reaches it.
    """
    S = src.shape[0]
    xi = np.asarray(src, dtype=np.int64)
    if syn.pool is not None:
        xi = _ref_pool(xi, syn.pool)
    if syn.flatten:
        xi = xi.reshape(S, -1)
    w = syn.weight.astype(np.int64)
    if syn.op == "dense":
        a = xi.reshape(S, -1) @ w.T
    elif syn.op == "conv2d":
        a = _ref_conv(xi, w, syn.stride, syn.padding)
    else:
        a = _ref_conv_transpose(xi, w, syn.stride, syn.padding, syn.output_padding)
    events, synops, cycles, deliveries = (np.zeros(S, dtype=np.int64) for _ in range(4))
    busy = np.zeros(len(ranges[0]), dtype=np.int64)
    flat = xi.reshape(S, -1)
    npos = 1 if syn.op == "dense" else syn.input_shape[1] * syn.input_shape[2]
    for s in range(S):
        vals = flat[s]
        ev_per_elem = np.array([bin(int(v)).count("1") for v in vals], dtype=np.int64) if pixels else vals
        if syn.op == "dense":
            ev_pos = np.array([ev_per_elem.sum()])
        else:
            ev_pos = ev_per_elem.reshape(syn.input_shape[0], npos).sum(axis=0)
        events[s] += int(ev_pos.sum())
        for pos in np.nonzero(ev_pos)[0]:
            reach = _ref_reach(syn, layer_shape, int(pos))
            synops[s] += int(ev_pos[pos]) * len(reach)
            n_ev = int(ev_pos[pos])
            for rng in ranges:
                per_pe = [int(np.count_nonzero((reach >= a0) & (reach < a1))) for a0, a1 in rng]
                if max(per_pe) > 0:
                    cycles[s] += n_ev * (cyc.event + cyc.synop * max(per_pe))
                for p, n in enumerate(per_pe):
                    if n > 0:
                        deliveries[s] += n_ev
                        busy[p] += n_ev * (cyc.event + cyc.synop * n)
    return a.reshape(S, -1), events, synops, cycles, deliveries, busy


class ReferenceResult:
    """Everything :func:`reference_run` observes (arrays indexed [sample, timestep])."""

    def __init__(self):
        self.u = None
        self.spikes = {}
        self.spike_counts = {}
        self.sat_hi = {}
        self.sat_lo = {}
        self.events = {}
        self.synops = {}
        self.compute_cycles = {}
        self.deliveries = {}  # layer -> (S, T) PE input-buffer deliveries
        self.busy = {}  # layer -> (PEs,) busy cycles summed over samples and timesteps
        self.sigma_sum = None
        self.winner = None
        self.exit_t = None


def reference_run(program, x_int: np.ndarray, T: int, *, cl_init: float | None = None,
                  tau_cl: float | None = None) -> ReferenceResult:
    """Literal execution of contract sec. 3-6 for a (small) batch, in int64 numpy.

    ``x_int``: (samples, *input_shape) direct-encoded unsigned integers, or
    (samples, T, *input_shape) spikes or sequence frames (multi-bit, frame t at
    timestep t). Cycles are computed per event by enumerating the neurons it
    reaches (independent of ``atsnn.hwsim.tables``). Sliding-PSN layers (sec. 11) run
    :func:`atsnn.hwsim.psn_reference.psn_update` on a ``(k - 1)``-entry history.
    """
    from atsnn.ilif import is_ilif
    if is_ilif(program):  # accumulate and fire phases (sec. 10)
        from atsnn.hwsim.ilif_reference import reference_run_ilif
        return reference_run_ilif(program, x_int, T)
    from atsnn import psn
    from atsnn.hwsim.psn_reference import psn_update
    hw = program.hardware
    x_int = np.asarray(x_int, dtype=np.int64)
    S = x_int.shape[0]
    direct = program.input.encoding == "direct"
    multibit = program.input.encoding in ("direct", "sequence")
    res = ReferenceResult()
    state = {}
    for l in program.layers:
        per = l.neurons // l.channels
        if psn.is_psn_layer(l):  # history of the last k - 1 currents, zero before the first timestep
            state[l.name] = np.zeros((S, l.neurons, psn.history_entries(l)), dtype=np.int64)
        else:
            state[l.name] = np.repeat(np.asarray(l.v_init, dtype=np.int64), per)[None, :].repeat(S, axis=0)
        for d in (res.spikes,):
            d[l.name] = np.zeros((S, T, l.neurons), dtype=np.uint8)
        for d in (res.spike_counts, res.sat_hi, res.sat_lo, res.events, res.synops, res.compute_cycles,
                  res.deliveries):
            d[l.name] = np.zeros((S, T), dtype=np.int64)
        res.busy[l.name] = np.zeros(len(l.mapping.chunk_sizes), dtype=np.int64)
    C = program.output_layer.neurons
    res.u = np.zeros((S, T, C), dtype=np.int64)
    ranges = {l.name: _ref_pass_ranges(l) for l in program.layers}
    cyc = hw.cycles
    for t in range(T):
        cur_spikes = {}
        for l in program.layers:
            acc = np.zeros((S, l.neurons), dtype=np.int64)
            for syn in l.synapses:
                if syn.source == "input":
                    src = x_int if direct else x_int[:, t]
                else:
                    src = cur_spikes[syn.source].reshape((S,) + tuple(program.layer(syn.source).shape))
                a, events, synops, cycles, deliveries, busy = _ref_synapse(
                    syn, src, l.shape, ranges[l.name], cyc, pixels=syn.source == "input" and multibit)
                acc += a
                res.deliveries[l.name][:, t] += deliveries
                res.busy[l.name] += busy
                res.events[l.name][:, t] += events
                res.synops[l.name][:, t] += synops
                res.compute_cycles[l.name][:, t] += cycles
            upd = cyc.at_update if l.mapping.unit == "at" else cyc.update
            if psn.is_psn_layer(l):  # one tap multiply-accumulate per cycle (sec. 11)
                upd = cyc.update + psn.k_of(l) * cyc.psn_tap
            for rng in ranges[l.name]:
                res.compute_cycles[l.name][:, t] += upd * max(a1 - a0 for a0, a1 in rng)
                res.busy[l.name] += S * upd * np.array([a1 - a0 for a0, a1 in rng], dtype=np.int64)
            per = l.neurons // l.channels
            bias = np.repeat(np.asarray(l.bias, dtype=np.int64), per)
            if psn.is_psn_layer(l):
                p = psn.layer_params(l)
                u, z, hi, lo, _ = psn_update(state[l.name], acc, bias, taps=p["taps"], shift=p["shift"],
                                             threshold=l.threshold, comparator=l.comparator, vmin=hw.membrane_min,
                                             vmax=hw.membrane_max)
            elif l.neuron == "integrator":
                u, hi, lo = integrator_update(state[l.name], acc, bias, leak_shift=l.leak_shift,
                                              umin=hw.at_membrane_min, umax=hw.at_membrane_max)
                z = np.zeros(u.shape, dtype=np.uint8)
            else:
                u, z, hi, lo = neuron_update(state[l.name], acc, bias, threshold=l.neuron_thresholds(),
                                             current_shift=l.current_shift,
                                             leak_shift=l.leak_shift, reset=l.reset, v_reset=l.v_reset,
                                             comparator=l.comparator, vmin=hw.membrane_min, vmax=hw.membrane_max)
            state[l.name] = u
            cur_spikes[l.name] = z
            res.spikes[l.name][:, t] = z
            res.spike_counts[l.name][:, t] = z.sum(axis=1)
            res.sat_hi[l.name][:, t] = hi.sum(axis=1)
            res.sat_lo[l.name][:, t] = lo.sum(axis=1)
        res.u[:, t] = state[program.output]
    if program.at is not None:
        table = exp_table(hw)
        sig, win = at_sigma(res.u, table, exp_mult=program.at.exp_mult, d_clip=program.at.d_clip, hw=hw)
        res.sigma_sum = sig.sum(axis=2)
        res.winner = win
        if cl_init is not None and tau_cl is not None:
            cl = cl_sequence(cl_init, tau_cl, T, hw)
            ok = at_exit(res.sigma_sum, cl[None, :], hw)
            ok[:, T - 1] = True
            res.exit_t = ok.argmax(axis=1) + 1
    return res
