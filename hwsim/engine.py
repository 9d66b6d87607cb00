"""The exact simulator: run a Program for T timesteps and record everything per sample and timestep.

:func:`simulate` streams samples in batches (memory stays bounded), computes
the functional result with exact integer arithmetic (float32 GEMM on integer
values, checked below 2**24) and the Numba neuron kernel, and counts events,
synops, spikes, saturations, cycles (contract sec. 6) and energy per
component (sec. 8) for every layer. The resulting :class:`Trace` holds the
fixed-T run; exit policies (:mod:`atsnn.hwsim.policies`) are evaluated from it
exactly, because membranes up to T do not depend on the policy.

Sliding-PSN layers (docs/hardware.md sec. 11) keep a ``(k - 1)``-entry
history of currents per neuron and cost ``cycles.update + k *
cycles.psn_tap`` per neuron update. Sequence inputs feed frame ``t`` at
timestep ``t`` bit-serially; each frame is loaded from DRAM in the first
layer's transfer of its timestep (nothing cached, no per-inference load).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from atsnn.config import HardwareConfig
from atsnn.costs import CostTable, load_costs
from atsnn.errors import SimulationInputError
from atsnn.program import Program
from atsnn.hwsim.energy import COMPONENTS, ActionEnergy
from atsnn.hwsim.inputs import prepare_inputs
from atsnn.hwsim.kernels import update_layer
from atsnn.hwsim.ops import EXACT_LIMIT, apply_synapse, synapse_input
from atsnn.hwsim.tables import build_tables, event_positions

LAYER_FIELDS = ("events", "synops", "updates", "spikes", "sat_hi", "sat_lo", "compute_cycles", "stall_cycles",
                "cycles", "glb_bytes", "dram_bytes")


@dataclass
class Trace:
    """Fixed-T record of a simulation (arrays are (samples, T) unless noted)."""

    program: Program
    costs: CostTable
    T: int
    u: np.ndarray  # (S, T, C) int64 output membranes
    labels: np.ndarray | None
    layers: dict[str, dict[str, np.ndarray]]  # layer -> field -> (S, T); plus "energy_<component>"
    busy: dict[str, np.ndarray]  # layer -> (P,) summed busy cycles
    busy_norm: dict[str, float]  # layer -> summed compute cycles
    input_load_cycles: int
    input_load_energy_pj: float
    action: ActionEnergy
    notes: list[str] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return self.u.shape[0]

    def step_cycles(self) -> np.ndarray:
        """(S, T) cycles of each timestep over all layers (no policy unit)."""
        return sum(d["cycles"] for d in self.layers.values())

    def step_energy(self) -> dict[str, np.ndarray]:
        """component -> (S, T) dynamic energy per timestep over all layers (no leakage, no policy unit)."""
        out = {c: np.zeros(self.u.shape[:2]) for c in COMPONENTS if c != "leakage"}
        for d in self.layers.values():
            for c in out:
                out[c] = out[c] + d[f"energy_{c}"]
        return out


def _resolve_costs(costs, dram=None) -> CostTable:
    if isinstance(costs, CostTable):
        return costs
    return load_costs(costs, dram=dram)


def check_T(T) -> int:
    """``T`` as an ``int``; a :class:`SimulationInputError` unless it is an integer >= 1."""
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise SimulationInputError(f"T must be an integer >= 1, not {T!r}")
    return int(T)


def run_batches(program: Program, hw: HardwareConfig, action: ActionEnergy, tables, xq: np.ndarray, T: int,
                batch_size: int, run_batch, *, progress: bool, desc: str, extra_fields=()):
    """The simulators' sample loop: allocate the records, fill them batch by batch; ``(u, rec, busy, busy_norm)``.

    ``u`` is ``(samples, T, C)`` int64 zeros; ``rec[layer]`` holds ``(samples, T)`` zeros for every
    :data:`LAYER_FIELDS` (int64, float64 for the ``*_bytes``), then each ``(name, dtype)`` of
    ``extra_fields``, then ``energy_<component>`` (float64) for every component but leakage; ``busy[layer]``
    has one zero per PE chunk and ``busy_norm[layer]`` is 0.0. For each batch ``b0:b1`` of at most
    ``batch_size`` samples, ``run_batch(program, hw, action, tables, weights32, xq[b0:b1], T, u[b0:b1], rec,
    busy, busy_norm, b0, b1)`` fills them (``weights32[(layer, i)]`` = synapse ``i``'s weights as float32).
    ``progress`` shows a tqdm bar named ``desc``.
    """
    n = xq.shape[0]
    from atsnn.hwsim.memory import check_run_memory
    fields = len(LAYER_FIELDS) + len(extra_fields) + len(COMPONENTS) - 1
    check_run_memory(n, T, len(program.layers), fields, program.output_layer.neurons,
                     what=f"program '{program.name}'")
    u = np.zeros((n, T, program.output_layer.neurons), dtype=np.int64)
    rec = {}
    for l in program.layers:
        rec[l.name] = {f: np.zeros((n, T), dtype=np.int64 if "bytes" not in f else np.float64) for f in LAYER_FIELDS}
        for name, dtype in extra_fields:
            rec[l.name][name] = np.zeros((n, T), dtype=dtype)
        for c in COMPONENTS:
            if c != "leakage":
                rec[l.name][f"energy_{c}"] = np.zeros((n, T))
    busy = {l.name: np.zeros(len(l.mapping.chunk_sizes)) for l in program.layers}
    busy_norm = {l.name: 0.0 for l in program.layers}
    weights32 = {(l.name, i): s.weight.astype(np.float32) for l in program.layers for i, s in enumerate(l.synapses)}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, unit="sample", desc=desc, leave=False)
    for b0 in range(0, n, batch_size):
        b1 = min(n, b0 + batch_size)
        run_batch(program, hw, action, tables, weights32, xq[b0:b1], T, u[b0:b1], rec, busy, busy_norm, b0, b1)
        if bar is not None:
            bar.update(b1 - b0)
    if bar is not None:
        bar.close()
    return u, rec, busy, busy_norm


def simulate(program: Program, x: np.ndarray, labels: np.ndarray | None = None, *, T: int,
             costs: CostTable | str | None = None, dram: str | None = None, batch_size: int | None = None,
             progress: bool = False, already_quantized: bool = False) -> Trace:
    """Run ``program`` on inputs ``x`` for ``T`` timesteps; see the module docstring."""
    from atsnn.ilif import is_ilif
    if is_ilif(program):  # accumulate and fire phases (docs/hardware.md sec. 10)
        from atsnn.hwsim.ilif import simulate_ilif
        return simulate_ilif(program, x, labels, T=T, costs=costs, dram=dram, batch_size=batch_size,
                             progress=progress, already_quantized=already_quantized)
    T = check_T(T)
    hw = program.hardware
    ct = _resolve_costs(costs, dram)
    from atsnn.psn import has_psn
    action = ActionEnergy(hw, ct, psn=has_psn(program))
    xq, labels = prepare_inputs(program, x, labels, T, already_quantized=already_quantized)
    tables = build_tables(program)
    if batch_size is None:
        from atsnn.psn import history_entries, is_psn_layer
        frames = xq.shape[1] if program.input.encoding in ("sequence", "spikes") else 1
        per_sample = (sum(l.neurons for l in program.layers) * 16 + int(np.prod(program.input.shape)) * 8 * frames
                      + sum(history_entries(l) * l.neurons for l in program.layers if is_psn_layer(l)) * 8)
        batch_size = int(max(1, min(256, (256 << 20) // max(per_sample * 8, 1))))
    u, rec, busy, busy_norm = run_batches(program, hw, action, tables, xq, T, batch_size, _run_batch,
                                          progress=progress, desc=f"hwsim {program.name}")
    in_bytes = input_load_bytes(program)
    load_cycles = math.ceil(in_bytes / hw.memory.dram_bandwidth_bytes_per_cycle)
    return Trace(program=program, costs=ct, T=T, u=u, labels=labels, layers=rec, busy=busy, busy_norm=busy_norm,
                 input_load_cycles=load_cycles, input_load_energy_pj=in_bytes * action.dram, action=action)


def input_load_bytes(program: Program) -> int:
    """Bytes loaded from DRAM once per inference: the input image (direct, spikes); 0 for sequence inputs,
    whose frames are loaded per timestep (:func:`input_frame_bytes`)."""
    if program.input.encoding == "sequence":
        return 0
    return math.ceil(int(np.prod(program.input.shape)) * program.input.bits / 8)


def input_frame_bytes(program: Program) -> int:
    """Bytes of one input read per timestep: the multi-bit image or frame, or the spike bitmap."""
    bits = program.input.bits if program.input.encoding in ("direct", "sequence") else 1
    return math.ceil(int(np.prod(program.input.shape)) * bits / 8)


class StepCounters:
    """Per-sample counters of one layer in one (accumulate) step, filled synapse by synapse (sec. 3, 6-7).

    ``acc`` is the ``(B, neurons)`` float32 sum of the synapse currents (exact integers below
    :data:`atsnn.hwsim.ops.EXACT_LIMIT`; ``None`` before the first synapse, then that synapse's current array
    itself, which is never written to); ``events``, ``synops``, ``deliveries``, ``compute`` (cycles) and
    ``pe_busy`` ``(PEs,)`` (summed over the batch) come from the event positions through the synapse table's accounting
    matrix; ``glb_r`` and ``dram`` (bytes) start at 0 for the caller's traffic. All float64 but ``acc``.
    """

    def __init__(self, B: int, layer):
        self.acc = None  # set by the first synapse (its current itself, not copied, until a second adds to it)
        self._acc_shape = (B, layer.neurons)
        self._acc_shared = False
        self.compute = np.zeros(B)
        self.pe_busy = np.zeros(len(layer.mapping.chunk_sizes))
        self.synops = np.zeros(B)
        self.deliveries = np.zeros(B)
        self.events = np.zeros(B)
        self.glb_r = np.zeros(B)
        self.dram = np.zeros(B)

    def add(self, current: np.ndarray, epos: np.ndarray, st, cyc) -> None:
        """Add one synapse: its ``(B, neurons)`` current, its events per input position ``epos`` (float64)
        counted with its table ``st`` at the cycle costs ``cyc`` (``hw.cycles``)."""
        if self.acc is None:  # the first synapse's current is the sum so far: no zero-fill, no copy
            self.acc, self._acc_shared = current, True
        elif self._acc_shared:
            self.acc, self._acc_shared = self.acc + current, False
        else:
            self.acc += current
        self.events += epos.sum(axis=1)
        per_event, busy_per_event = st.accounting_matrix(cyc.event, cyc.synop)
        counted = epos @ per_event
        self.synops += counted[:, 0]
        self.compute += counted[:, 1]
        self.deliveries += counted[:, 2]
        self.pe_busy += epos.sum(axis=0) @ busy_per_event

    def checked_acc(self, layer_name: str) -> np.ndarray:
        """``acc`` (float32 holding exact integers; read-only: it may be a synapse's current), or a
        :class:`SimulationInputError` if it reached the float32-exact limit."""
        acc = self.acc if self.acc is not None else np.zeros(self._acc_shape, dtype=np.float32)
        if acc.size and max(float(acc.max()), -float(acc.min())) >= EXACT_LIMIT:
            raise SimulationInputError(f"layer '{layer_name}': accumulator exceeds the exact range; the program "
                                       "violates the accumulator bound (recompile)")
        return acc

    def exact_acc(self, layer_name: str) -> np.ndarray:
        """:meth:`checked_acc` as int64."""
        return self.checked_acc(layer_name).astype(np.int64)


def spill_traffic(mapping, glb_r, glb_w, dram):
    """Add one timestep's spilled neuron state (sec. 7) to the per-sample bytes; returns ``(glb_r, glb_w, dram)``.

    ``mapping.spilled_state_bytes_per_timestep`` goes to DRAM when the state lives there, else half of it
    is read and half written through the GLB. New arrays; the arguments are not changed.
    """
    spill = mapping.spilled_state_bytes_per_timestep
    if mapping.state_in_dram:
        return glb_r, glb_w, dram + spill
    return glb_r + spill / 2, glb_w + spill / 2, dram


def weight_traffic(mapping, hw: HardwareConfig, synops, glb_r, dram):
    """Add the streamed weights of one step (sec. 7) to the per-sample bytes; returns ``(glb_r, dram)``.

    Nothing for resident weights; else ``min(synops x weight_bits / 8, streamed_weight_bytes_per_timestep)``
    read from DRAM or the GLB, where the mapping keeps them. New arrays; the arguments are not changed.
    """
    if mapping.weights_resident:
        return glb_r, dram
    wbytes = np.minimum(synops * hw.numeric.weight_bits / 8, mapping.streamed_weight_bytes_per_timestep)
    if mapping.weights_in_dram:
        return glb_r, dram + wbytes
    return glb_r + wbytes, dram


def transfer_cycles(hw: HardwareConfig, glb_bytes, dram_bytes):
    """Cycles to move ``glb_bytes`` through the GLB and ``dram_bytes`` from DRAM in parallel (sec. 6)."""
    return np.maximum(np.ceil(glb_bytes / hw.memory.glb_bandwidth_bytes_per_cycle),
                      np.ceil(dram_bytes / hw.memory.dram_bandwidth_bytes_per_cycle))


def _run_batch(program, hw: HardwareConfig, action, tables, weights32, xq, T, u_out, rec, busy, busy_norm, b0, b1):
    from atsnn.psn import is_psn_layer, k_of
    from atsnn.hwsim.psn import initial_history, update_cycles_per_neuron, update_psn_layer
    B = xq.shape[0]
    direct = program.input.encoding == "direct"
    sequence = program.input.encoding == "sequence"
    v = {}
    bias_n = {}
    for l in program.layers:
        per = l.neurons // l.channels
        # PSN layers keep a (B, N, k-1) history of currents instead of a membrane (sec. 11)
        v[l.name] = (initial_history(l, B) if is_psn_layer(l)
                     else np.repeat(np.asarray(l.v_init, dtype=np.int64), per)[None, :].repeat(B, axis=0))
        bias_n[l.name] = np.repeat(np.asarray(l.bias, dtype=np.int64), per)
    cache: dict[Any, Any] = {}
    cyc = hw.cycles
    for t in range(T):
        spikes_now: dict[str, np.ndarray] = {}
        for l in program.layers:
            lt = tables[l.name]
            m = l.mapping
            step = StepCounters(B, l)
            for si, (syn, st) in enumerate(zip(l.synapses, lt.synapses)):
                key = (l.name, si)
                if syn.source == "input" and direct and key in cache:
                    cur, epos = cache[key]
                else:
                    if syn.source == "input":
                        src = xq if direct else xq[:, t]
                    else:
                        src_layer = program.layer(syn.source)
                        src = spikes_now[syn.source].reshape((B,) + tuple(src_layer.shape))
                    xi = synapse_input(syn, src)
                    cur = apply_synapse(syn, xi, weights32[key]).reshape(B, -1)
                    epos = event_positions(syn, xi, pixels=(syn.source == "input" and (direct or sequence))
                                           ).astype(np.float64)
                    if syn.source == "input" and direct:
                        cache[key] = (cur, epos)
                step.add(cur, epos, st, cyc)
                if syn.source != "input":
                    src_l = program.layer(syn.source)
                    if src_l.mapping.spikes_in_dram:
                        step.dram += math.ceil(src_l.neurons / 8)
                    else:
                        step.glb_r += math.ceil(src_l.neurons / 8)
                elif sequence:  # a new frame every timestep, straight from DRAM (sec. 11)
                    step.dram += input_frame_bytes(program)
                else:
                    step.glb_r += input_frame_bytes(program)
            acc_i = step.exact_acc(l.name) if is_psn_layer(l) else step.checked_acc(l.name)
            compute, pe_busy, synops, deliveries = step.compute, step.pe_busy, step.synops, step.deliveries
            events, glb_r, dram = step.events, step.glb_r, step.dram
            upd = update_cycles_per_neuron(l, hw)
            for sizes in lt.pass_sizes:
                compute += upd * sizes.max()
                pe_busy += upd * sizes * B
            if is_psn_layer(l):
                spk, counts = update_psn_layer(l, hw, v[l.name], acc_i, bias_n[l.name])
            else:
                spk, counts = update_layer(l, hw, v[l.name], acc_i, bias_n[l.name])
            spikes_now[l.name] = spk
            # traffic (contract sec. 6-7)
            spike_map = math.ceil(l.neurons / 8) if l.neuron != "integrator" else 0
            glb_w = np.full(B, 0 if m.spikes_in_dram else spike_map, dtype=np.float64)
            if m.spikes_in_dram:
                dram = dram + spike_map
            glb_r, glb_w, dram = spill_traffic(m, glb_r, glb_w, dram)
            glb_r, dram = weight_traffic(m, hw, synops, glb_r, dram)
            stall = np.maximum(0, transfer_cycles(hw, glb_r + glb_w, dram) - compute)
            overhead = 0 if m.unit == "at" else cyc.layer_overhead
            r = rec[l.name]
            r["events"][b0:b1, t] = events
            r["synops"][b0:b1, t] = synops
            r["updates"][b0:b1, t] = l.neurons
            r["spikes"][b0:b1, t] = counts[:, 0]
            r["sat_hi"][b0:b1, t] = counts[:, 1]
            r["sat_lo"][b0:b1, t] = counts[:, 2]
            r["compute_cycles"][b0:b1, t] = compute
            r["stall_cycles"][b0:b1, t] = stall
            r["cycles"][b0:b1, t] = compute + stall + overhead
            r["glb_bytes"][b0:b1, t] = glb_r + glb_w
            r["dram_bytes"][b0:b1, t] = dram
            en = action.layer_energy(unit=m.unit, leak=l.leak_shift > 0, subtract=l.reset == "subtract",
                                     neurons=l.neurons, deliveries=deliveries, synops=synops,
                                     spikes=counts[:, 0], glb_read_bytes=glb_r, glb_write_bytes=glb_w,
                                     dram_bytes=dram, weights_streamed=not m.weights_resident,
                                     psn_k=k_of(l) if is_psn_layer(l) else 0, current_shift=l.current_shift)
            for c, val in en.items():
                r[f"energy_{c}"][b0:b1, t] = val
            busy[l.name] += pe_busy
            busy_norm[l.name] += float(compute.sum())
        u_out[:, t, :] = v[program.output]
