"""The exact simulator for iLIF programs (docs/hardware.md sec. 10): two phases per layer, pipelined.

Every layer runs A accumulate steps (``V <- sat(2 V + a_t)``, bias at step 1, no firing; A = T, or 1
for a layer fed only by the direct input) and,
unless it is the output integrator, T fire steps (``V <- sat(2 V)``, fire at the threshold, soft
reset). Fire step t of a layer feeds accumulate step t of the next, so one step of spike map per
layer is buffered. The functional result uses the same exact integer synapse operators as
:mod:`atsnn.hwsim.engine`; the neuron phases are Numba kernels (``ilif_accumulate_batch``,
``ilif_fire_batch``) that must agree with :mod:`atsnn.hwsim.ilif_reference` bit for bit (tests also run
them with ``NUMBA_DISABLE_JIT=1``). Counts, cycles and energy follow sec. 6-8 per phase step.

The result is an ordinary :class:`atsnn.hwsim.engine.Trace`; record t of a layer holds its accumulate
step t+1 plus its fire step t+1 (extra fields ``fire_cycles`` and ``fire_energy`` hold the fire
phase alone), ``u[:, t]`` is the output after accumulate step t+1. Only the fixed policy applies.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from atsnn import ilif as core
from atsnn.hwsim.inputs import prepare_inputs
from atsnn.hwsim.ops import apply_synapse, synapse_input
from atsnn.hwsim.tables import build_tables, event_positions


# --------------------------------------------------------------------------- kernels
@njit(cache=True)
def saturate(s, vmin, vmax):
    """The contract's saturation of one value: ``(clamp(s, vmin, vmax), s > vmax, s < vmin)``, flags as 0/1."""
    if s > vmax:
        return vmax, 1, 0
    if s < vmin:
        return vmin, 0, 1
    return s, 0, 0


@njit(cache=True)
def ilif_accumulate_batch(v, acc, bias_n, add_bias, vmin, vmax, counts_out):
    """In place: ``v = clamp(2 v + acc (+ bias_n))``; adds saturations to ``counts_out[:, 1:3]``."""
    nb, nn = v.shape
    for b in range(nb):
        hi = 0
        lo = 0
        for n in range(nn):
            s = 2 * v[b, n] + acc[b, n]
            if add_bias:
                s += bias_n[n]
            v[b, n], up, down = saturate(s, vmin, vmax)
            hi += up
            lo += down
        counts_out[b, 1] += hi
        counts_out[b, 2] += lo


@njit(cache=True)
def ilif_fire_batch(v, threshold, ge, vmin, vmax, spikes_out, counts_out):
    """In place: ``v = clamp(2 v)``, fire at the threshold, soft reset; writes spikes, adds counts."""
    nb, nn = v.shape
    for b in range(nb):
        ns = 0
        hi = 0
        lo = 0
        for n in range(nn):
            s, up, down = saturate(2 * v[b, n], vmin, vmax)
            hi += up
            lo += down
            if ge:
                fire = s >= threshold
            else:
                fire = s > threshold
            if fire:
                s = s - threshold
                ns += 1
                spikes_out[b, n] = 1
            else:
                spikes_out[b, n] = 0
            v[b, n] = s
        counts_out[b, 0] += ns
        counts_out[b, 1] += hi
        counts_out[b, 2] += lo


# --------------------------------------------------------------------------- energy (sec. 8 per phase)
def accumulate_energy(action, *, unit: str, neurons: int, deliveries, synops, glb_read_bytes, glb_write_bytes,
                      dram_bytes, weights_streamed: bool) -> dict[str, np.ndarray]:
    """Energy of one accumulate step: events, synops and one update per neuron.

    The update reads and writes membrane and accumulator, shifts (charged like the leak's
    ``membrane_bits`` shift-add), adds twice at ``accumulator_bits`` (``a + b``, ``+ 2v``) and
    compares twice for saturation; it has no threshold compare and writes no spike. On the AT unit
    the output integrator is charged exactly as an integrator with leak (sec. 8).
    """
    a = action
    deliveries = np.asarray(deliveries, dtype=np.float64)
    synops = np.asarray(synops, dtype=np.float64)
    if unit == "at":
        return a.layer_energy(unit="at", leak=True, subtract=False, neurons=neurons, deliveries=deliveries,
                              synops=synops, spikes=np.zeros_like(synops), glb_read_bytes=glb_read_bytes,
                              glb_write_bytes=glb_write_bytes, dram_bytes=dram_bytes, weights_streamed=weights_streamed)
    zero = np.zeros_like(synops)
    buf = deliveries * a.ev_bytes * (a.sb_wr + a.sb_rd)
    mem = (synops * ((0 if weights_streamed else a.wbytes) * a.pm_rd + a.accbytes * (a.pm_rd + a.pm_wr))
           + neurons * (a.membytes + a.accbytes) * (a.pm_rd + a.pm_wr))
    logic = synops * a.add_acc + neurons * (2 * a.add_acc + 2 * a.cmp_mem + a.add_mem)
    return dict(pe_logic=logic, pe_memory=mem, spike_buffers=buf, at_unit=zero,
                glb=np.asarray(glb_read_bytes, dtype=np.float64) * a.glb_rd
                + np.asarray(glb_write_bytes, dtype=np.float64) * a.glb_wr,
                dram=np.asarray(dram_bytes, dtype=np.float64) * a.dram)


def fire_energy(action, *, neurons: int, spikes, glb_read_bytes, glb_write_bytes, dram_bytes) -> dict[str, np.ndarray]:
    """Energy of one fire step: per neuron a membrane read and write, the shift (charged like the leak's
    shift-add), two saturation compares and the threshold compare, one output-buffer bit; a subtract
    per spike (soft reset)."""
    a = action
    spikes = np.asarray(spikes, dtype=np.float64)
    zero = np.zeros_like(spikes)
    buf = zero + (neurons / 8.0) * (a.sb_wr + a.sb_rd)
    mem = zero + neurons * a.membytes * (a.pm_rd + a.pm_wr)
    logic = neurons * (a.add_mem + 3 * a.cmp_mem) + spikes * a.add_mem
    return dict(pe_logic=logic, pe_memory=mem, spike_buffers=buf, at_unit=zero,
                glb=np.asarray(glb_read_bytes, dtype=np.float64) * a.glb_rd
                + np.asarray(glb_write_bytes, dtype=np.float64) * a.glb_wr,
                dram=np.asarray(dram_bytes, dtype=np.float64) * a.dram)


# --------------------------------------------------------------------------- simulator
def simulate_ilif(program, x, labels=None, *, T: int, costs=None, dram=None, batch_size=None, progress=False,
                  already_quantized=False):
    """:func:`atsnn.hwsim.engine.simulate` for iLIF programs (same arguments, same Trace)."""
    from atsnn.hwsim.energy import ActionEnergy
    from atsnn.hwsim.engine import Trace, _resolve_costs, check_T, run_batches

    T = check_T(T)
    core.check_T(program, T)
    hw = program.hardware
    ct = _resolve_costs(costs, dram)
    action = ActionEnergy(hw, ct)
    # no frame inputs here: iLIF programs take direct (multi-bit) or spike inputs
    xq, labels = prepare_inputs(program, x, labels, T, already_quantized=already_quantized, frames=False)
    tables = build_tables(program)
    if batch_size is None:
        per_sample = sum(l.neurons for l in program.layers) * (16 + T) + int(np.prod(program.input.shape)) * 8
        batch_size = int(max(1, min(256, (256 << 20) // max(per_sample * 8, 1))))
    u, rec, busy, busy_norm = run_batches(program, hw, action, tables, xq, T, batch_size, _run_batch,
                                          progress=progress, desc=f"hwsim {program.name} (iLIF)",
                                          extra_fields=(("fire_cycles", np.int64), ("fire_energy", np.float64)))
    in_bytes = math.ceil(int(np.prod(program.input.shape)) * program.input.bits / 8)
    load_cycles = math.ceil(in_bytes / hw.memory.dram_bandwidth_bytes_per_cycle)
    notes = [f"iLIF program (T = {T}): timestep t of a layer = its accumulate step t plus its fire step t "
             "(docs/hardware.md sec. 10); fixed T only"]
    return Trace(program=program, costs=ct, T=T, u=u, labels=labels, layers=rec, busy=busy, busy_norm=busy_norm,
                 input_load_cycles=load_cycles, input_load_energy_pj=in_bytes * action.dram, action=action,
                 notes=notes)


def _run_batch(program, hw, action, tables, w32, xq, T, u_out, rec, busy, busy_norm, b0, b1):
    from atsnn.hwsim.engine import StepCounters, spill_traffic, transfer_cycles, weight_traffic
    B = xq.shape[0]
    direct = program.input.encoding == "direct"
    cyc = hw.cycles
    in_bytes = math.ceil(int(np.prod(program.input.shape)) * (program.input.bits if direct else 1) / 8)
    trains: dict[str, np.ndarray] = {}
    for l in program.layers:
        lt = tables[l.name]
        m = l.mapping
        integrator = l.neuron == "integrator"
        vmin, vmax = (hw.at_membrane_min, hw.at_membrane_max) if integrator else (hw.membrane_min, hw.membrane_max)
        per = l.neurons // l.channels
        v = np.repeat(np.asarray(l.v_init, dtype=np.int64), per)[None, :].repeat(B, axis=0)
        bias_n = np.repeat(np.asarray(l.bias, dtype=np.int64), per)
        upd = cyc.at_update if m.unit == "at" else cyc.update
        upd_cycles = upd * sum(int(s.max()) for s in lt.pass_sizes)
        upd_busy = upd * sum(s for s in lt.pass_sizes)
        overhead = 0 if m.unit == "at" else cyc.layer_overhead
        spike_map = 0 if integrator else math.ceil(l.neurons / 8)
        r = rec[l.name]
        if not integrator:
            trains[l.name] = np.zeros((B, T, l.neurons), dtype=np.uint8)
        for t in range(core.accumulate_steps(l, T)):
            step = StepCounters(B, l)
            for si, (syn, st) in enumerate(zip(l.synapses, lt.synapses)):
                if syn.source == "input":
                    if direct and t > 0:
                        continue  # the multi-bit input arrives once, at step 1 (its events are charged once)
                    src = xq if direct else xq[:, t]
                    step.glb_r += in_bytes
                else:
                    src = trains[syn.source][:, t].reshape((B,) + tuple(program.layer(syn.source).shape))
                    src_l = program.layer(syn.source)
                    if src_l.mapping.spikes_in_dram:
                        step.dram += math.ceil(src_l.neurons / 8)
                    else:
                        step.glb_r += math.ceil(src_l.neurons / 8)
                xi = synapse_input(syn, src)
                cur = apply_synapse(syn, xi, w32[(l.name, si)]).reshape(B, -1)
                epos = event_positions(syn, xi, pixels=(syn.source == "input" and direct)).astype(np.float64)
                step.add(cur, epos, st, cyc)
            acc = step.exact_acc(l.name)
            compute, pe_busy, synops, deliveries = step.compute, step.pe_busy, step.synops, step.deliveries
            events, glb_r, dram = step.events, step.glb_r, step.dram
            counts = np.zeros((B, 3), dtype=np.int64)
            ilif_accumulate_batch(v, acc, bias_n, t == 0, np.int64(vmin), np.int64(vmax), counts)
            compute += upd_cycles
            pe_busy += upd_busy * B
            # accumulate-step traffic: sources, streamed weights, spilled state (sec. 6-7)
            glb_r, glb_w, dram = spill_traffic(m, glb_r, np.zeros(B), dram)
            glb_r, dram = weight_traffic(m, hw, synops, glb_r, dram)
            stall = np.maximum(0, transfer_cycles(hw, glb_r + glb_w, dram) - compute)
            cycles = compute + stall + overhead
            en = accumulate_energy(action, unit=m.unit, neurons=l.neurons, deliveries=deliveries, synops=synops,
                                   glb_read_bytes=glb_r, glb_write_bytes=glb_w, dram_bytes=dram,
                                   weights_streamed=not m.weights_resident)
            glb_total, dram_total, updates = glb_r + glb_w, dram, l.neurons
            if l.name == program.output:
                u_out[:, t:, :] = v[:, None, :]
            r["events"][b0:b1, t] = events
            r["synops"][b0:b1, t] = synops
            r["compute_cycles"][b0:b1, t] = compute
            r["stall_cycles"][b0:b1, t] = stall
            r["cycles"][b0:b1, t] = cycles
            r["sat_hi"][b0:b1, t] = counts[:, 1]
            r["sat_lo"][b0:b1, t] = counts[:, 2]
            r["updates"][b0:b1, t] = updates
            r["glb_bytes"][b0:b1, t] = glb_total
            r["dram_bytes"][b0:b1, t] = dram_total
            for c, val in en.items():
                r[f"energy_{c}"][b0:b1, t] = val
            busy[l.name] += pe_busy
            busy_norm[l.name] += float(compute.sum())
        if integrator:
            continue
        ge = l.comparator == ">="
        for t in range(T):
            counts = np.zeros((B, 3), dtype=np.int64)
            spk = np.empty((B, l.neurons), dtype=np.uint8)
            ilif_fire_batch(v, np.int64(l.threshold), ge, np.int64(vmin), np.int64(vmax), spk, counts)
            trains[l.name][:, t] = spk
            # fire-step traffic: the spike map of this step (one step buffered: the phases are pipelined)
            glb_w = np.full(B, 0.0 if m.spikes_in_dram else float(spike_map))
            dram = np.full(B, float(spike_map) if m.spikes_in_dram else 0.0)
            glb_r, glb_w, dram = spill_traffic(m, np.zeros(B), glb_w, dram)
            compute = np.full(B, float(upd_cycles))
            stall = np.maximum(0, transfer_cycles(hw, glb_r + glb_w, dram) - compute)
            fcyc = compute + stall + overhead
            en = fire_energy(action, neurons=l.neurons, spikes=counts[:, 0], glb_read_bytes=glb_r,
                             glb_write_bytes=glb_w, dram_bytes=dram)
            r["spikes"][b0:b1, t] = counts[:, 0]
            r["sat_hi"][b0:b1, t] += counts[:, 1]
            r["sat_lo"][b0:b1, t] += counts[:, 2]
            r["compute_cycles"][b0:b1, t] += compute.astype(np.int64)
            r["stall_cycles"][b0:b1, t] += stall.astype(np.int64)
            r["cycles"][b0:b1, t] += fcyc.astype(np.int64)
            r["fire_cycles"][b0:b1, t] = fcyc
            r["updates"][b0:b1, t] += l.neurons
            r["glb_bytes"][b0:b1, t] += glb_r + glb_w
            r["dram_bytes"][b0:b1, t] += dram
            r["fire_energy"][b0:b1, t] = sum(en.values())
            for c, val in en.items():
                r[f"energy_{c}"][b0:b1, t] += val
            busy[l.name] += upd_busy * B
            busy_norm[l.name] += float(compute.sum())
