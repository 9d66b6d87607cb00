"""Plain numpy reference of the iLIF contract (docs/hardware.md sec. 10).

The golden model for iLIF programs: hwsim's engine (:mod:`atsnn.hwsim.ilif`) and the RTL PE's iLIF
mode (:mod:`atsnn.rtl.pe_ilif`) are tested against these functions bit for bit. Integer numpy
(``int64``), literal rather than fast; events and cycles are enumerated event by event with
the same helpers as :func:`atsnn.hwsim.reference.reference_run` (independent of ``atsnn.hwsim.tables``).
"""

from __future__ import annotations

import numpy as np

from atsnn import ilif as core
from atsnn.hwsim.reference import ReferenceResult, _ref_pass_ranges, _ref_synapse


# --------------------------------------------------------------------------- neuron (sec. 10)
def ilif_accumulate(v, acc, bias, *, vmin: int, vmax: int):
    """Accumulate step: ``v' = clamp(2 v + a + b)``; returns ``(v', sat_hi, sat_lo)``.

    ``b`` is the layer's bias at step 1 and 0 afterwards (the caller decides).
    """
    s = 2 * np.asarray(v, dtype=np.int64) + np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    return np.clip(s, vmin, vmax).astype(np.int64), s > vmax, s < vmin


def ilif_fire(v, *, threshold: int, comparator: str, vmin: int, vmax: int):
    """Fire step: ``v2 = clamp(2 v)``, ``z = v2 >= theta`` (or ``>``), soft reset.

    Returns ``(v', spikes uint8, sat_hi, sat_lo)``.
    """
    s = 2 * np.asarray(v, dtype=np.int64)
    v2 = np.clip(s, vmin, vmax)
    z = (v2 >= threshold) if comparator == ">=" else (v2 > threshold)
    return np.where(z, v2 - threshold, v2).astype(np.int64), z.astype(np.uint8), s > vmax, s < vmin


# --------------------------------------------------------------------------- network
def reference_run_ilif(program, x_int: np.ndarray, T: int) -> ReferenceResult:
    """Literal execution of sec. 10 for a small batch: every layer's T accumulate and T fire steps.

    Record index t of a layer holds its accumulate step t+1 (if t < A) and its fire step t+1 (layers
    are pipelined: fire step t of a layer feeds accumulate step t of the next). ``u[:, t]`` is the
    output integrator after accumulate step min(t+1, A). ``compute_cycles`` includes both phases;
    ``fire_cycles`` (an extra attribute) the fire phase alone.
    """
    core.check_T(program, T)
    hw = program.hardware
    cyc = hw.cycles
    x_int = np.asarray(x_int, dtype=np.int64)
    S = x_int.shape[0]
    direct = program.input.encoding == "direct"
    res = ReferenceResult()
    res.fire_cycles = {}
    for l in program.layers:
        res.spikes[l.name] = np.zeros((S, T, l.neurons), dtype=np.uint8)
        for d in (res.spike_counts, res.sat_hi, res.sat_lo, res.events, res.synops, res.compute_cycles,
                  res.fire_cycles):
            d[l.name] = np.zeros((S, T), dtype=np.int64)
    res.u = np.zeros((S, T, program.output_layer.neurons), dtype=np.int64)
    for l in program.layers:
        ranges = _ref_pass_ranges(l)
        upd = cyc.at_update if l.mapping.unit == "at" else cyc.update
        update_cycles = upd * sum(max(a1 - a0 for a0, a1 in rng) for rng in ranges)
        integrator = l.neuron == "integrator"
        vmin, vmax = (hw.at_membrane_min, hw.at_membrane_max) if integrator else (hw.membrane_min, hw.membrane_max)
        per = l.neurons // l.channels
        v = np.repeat(np.asarray(l.v_init, dtype=np.int64), per)[None, :].repeat(S, axis=0)
        bias = np.repeat(np.asarray(l.bias, dtype=np.int64), per)
        for t in range(core.accumulate_steps(l, T)):
            acc = np.zeros((S, l.neurons), dtype=np.int64)
            for syn in l.synapses:
                if syn.source == "input":
                    if direct and t > 0:
                        continue  # a multi-bit input arrives once, at step 1
                    src = x_int if direct else x_int[:, t]
                else:
                    src = res.spikes[syn.source][:, t].reshape((S,) + tuple(program.layer(syn.source).shape))
                a, events, synops, cycles, *_ = _ref_synapse(syn, src, l.shape, ranges, cyc,
                                                         pixels=syn.source == "input" and direct)
                acc += a
                res.events[l.name][:, t] += events
                res.synops[l.name][:, t] += synops
                res.compute_cycles[l.name][:, t] += cycles
            v, hi, lo = ilif_accumulate(v, acc, bias if t == 0 else 0, vmin=vmin, vmax=vmax)
            res.compute_cycles[l.name][:, t] += update_cycles
            res.sat_hi[l.name][:, t] += hi.sum(axis=1)
            res.sat_lo[l.name][:, t] += lo.sum(axis=1)
            if l.name == program.output:
                res.u[:, t:] = v[:, None, :]
        if integrator:
            continue
        for t in range(T):
            v, z, hi, lo = ilif_fire(v, threshold=l.threshold, comparator=l.comparator, vmin=vmin, vmax=vmax)
            res.spikes[l.name][:, t] = z
            res.spike_counts[l.name][:, t] = z.sum(axis=1)
            res.sat_hi[l.name][:, t] += hi.sum(axis=1)
            res.sat_lo[l.name][:, t] += lo.sum(axis=1)
            res.compute_cycles[l.name][:, t] += update_cycles
            res.fire_cycles[l.name][:, t] = update_cycles
    return res
