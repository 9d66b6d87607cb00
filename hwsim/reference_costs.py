"""Plain second implementation of every cost figure hwsim reports (docs/hardware.md sec. 5-8).

Built on the counts of :func:`atsnn.hwsim.reference.reference_run` (events, synops, deliveries, spikes
and compute cycles, enumerated event by event), this module writes out from the contract, without
using :mod:`atsnn.hwsim.engine` or :mod:`atsnn.hwsim.energy`:

- the traffic of each layer-timestep (sec. 6-7): GLB bytes read and written and DRAM bytes, by kind
  (input image or frame, spike maps read and written, spilled state, streamed weights);
- its stall and total cycles (sec. 6);
- its **counted actions** (sec. 8): one table of ``(component, cost entry, action, width)`` ->
  count, priced with the cost table afterwards, so energy is count x energy per action;
- per exit policy (sec. 5): the exit timestep, cycles and energy per component of each inference,
  leakage for the whole time included.

The engine computes the same figures with its own formulas (vectorised, over tables); the tests
require both to agree on programs that stall, stream weights, spill state and keep spike maps in
DRAM. iLIF programs (sec. 10) are not covered here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from atsnn.costs import CostTable
from atsnn.hwsim.reference import ReferenceResult, at_exit, at_sigma, cl_sequence, exp_table

#: a counted action: (reported component, cost-table component, action, datapath width or None).
#: Memories are counted in bytes moved (priced per byte: access energy / port bytes), logic in
#: operations at a width (priced at the smallest tabulated width covering it), DRAM in bytes, and
#: ``("at_unit", "at_data_memory", "access", None)``-style entries with action ``read_access`` in
#: whole accesses.
Action = tuple[str, str, str, int | None]

#: the reported dynamic-energy components, in report order
DYNAMIC = ("pe_logic", "pe_memory", "spike_buffers", "at_unit", "glb", "dram")


@dataclass
class LayerCosts:
    """One layer's figures, each ``(samples, T)`` (``busy`` is per PE, summed)."""

    glb_read_bytes: np.ndarray
    glb_write_bytes: np.ndarray
    dram_bytes: np.ndarray
    traffic: dict[str, np.ndarray]  # kind -> bytes, e.g. "spike_map_write:glb"
    stall_cycles: np.ndarray
    cycles: np.ndarray
    actions: dict[Action, np.ndarray]
    energy_pj: dict[str, np.ndarray]  # component -> pJ

    @property
    def glb_bytes(self) -> np.ndarray:
        return self.glb_read_bytes + self.glb_write_bytes


@dataclass
class ReferenceCosts:
    layers: dict[str, LayerCosts]
    input_load_bytes: int
    input_load_cycles: int
    costs: CostTable


@dataclass
class ReferencePolicy:
    """One policy's per-inference figures, each ``(samples,)``."""

    exit_t: np.ndarray
    predicted: np.ndarray
    cycles: np.ndarray
    energy_by_component: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def energy_pj(self) -> np.ndarray:
        return sum(self.energy_by_component.values())


# --------------------------------------------------------------------------- pricing
def price(action: Action, costs: CostTable) -> float:
    """pJ of one unit of ``action`` (see :data:`Action`)."""
    _, comp, act, bits = action
    if comp == "dram":
        return costs.dram_pj_per_byte
    if comp == "logic":
        return costs.logic_pj(act, bits)
    if act.endswith("_access"):
        return costs.memory_access_pj(comp, act[: -len("_access")])
    return costs.memory_pj_per_byte(comp, act)


def priced(actions: dict[Action, np.ndarray], costs: CostTable, shape) -> dict[str, np.ndarray]:
    """Energy per reported component of counted ``actions``."""
    out = {c: np.zeros(shape) for c in DYNAMIC}
    for a, n in actions.items():
        out[a[0]] = out[a[0]] + np.asarray(n, dtype=np.float64) * price(a, costs)
    return out


# --------------------------------------------------------------------------- one layer (sec. 6-8)
def _traffic(program, layer, ref: ReferenceResult) -> dict[str, np.ndarray]:
    """Bytes moved in each layer-timestep by kind ``what:where`` (glb_read, glb_write, dram)."""
    hw = program.hardware
    S, T = ref.synops[layer.name].shape
    m = layer.mapping
    zero = np.zeros((S, T))
    kinds: dict[str, np.ndarray] = {}

    def add(kind, n):
        kinds[kind] = kinds.get(kind, zero) + n

    for syn in layer.synapses:
        if syn.source == "input":
            enc = program.input.encoding
            bits = program.input.bits if enc in ("direct", "sequence") else 1
            frame = math.ceil(int(np.prod(program.input.shape)) * bits / 8)
            # the image is read from the GLB every timestep; a sequence frame comes from DRAM
            add("input_frame:dram" if enc == "sequence" else "input_frame:glb_read", frame)
        else:
            src = program.layer(syn.source)
            where = "dram" if src.mapping.spikes_in_dram else "glb_read"
            add(f"spike_map_read:{where}", math.ceil(src.neurons / 8))
    if layer.neuron != "integrator":  # the layer's own spike bitmap
        add(
            "spike_map_write:" + ("dram" if m.spikes_in_dram else "glb_write"),
            math.ceil(layer.neurons / 8),
        )
    spill = m.spilled_state_bytes_per_timestep
    if spill:
        if m.state_in_dram:
            add("state_spill:dram", spill)
        else:  # loaded and stored: half of the bytes each way
            add("state_spill:glb_read", spill / 2)
            add("state_spill:glb_write", spill / 2)
    if not m.weights_resident:  # the weights the events use, no weight more than once per pass
        need = ref.synops[layer.name] * (hw.numeric.weight_bits / 8)
        streamed = np.minimum(need, m.streamed_weight_bytes_per_timestep)
        add("weights:" + ("dram" if m.weights_in_dram else "glb_read"), streamed)
    return kinds


def _layer_actions(program, layer, ref: ReferenceResult) -> dict[Action, np.ndarray]:
    """Counted actions of each layer-timestep (sec. 8), ``(S, T)`` counts per :data:`Action`."""
    from atsnn.psn import is_psn_layer, k_of

    hw = program.hardware
    n = hw.numeric
    name = layer.name
    synops = ref.synops[name].astype(np.float64)
    deliv = ref.deliveries[name].astype(np.float64)
    spikes = ref.spike_counts[name].astype(np.float64)
    N = layer.neurons
    on_at = layer.mapping.unit == "at"
    mem = "at_data_memory" if on_at else "pe_data_memory"
    mem_bucket = "at_unit" if on_at else "pe_memory"
    logic_bucket = "at_unit" if on_at else "pe_logic"
    buf_bucket = "at_unit" if on_at else "spike_buffers"
    acc_b = math.ceil(n.accumulator_bits / 8)
    v_bits = hw.at.membrane_bits if on_at else n.membrane_bits
    v_b = math.ceil(v_bits / 8)
    acts: dict[Action, np.ndarray] = {}

    def count(action, k):
        acts[action] = acts.get(action, 0) + k

    # events: an input-buffer write and read of event_bytes per PE that takes the event
    for rw in ("write", "read"):
        count((buf_bucket, "spike_buffer", rw, None), deliv * n.event_bytes)
        # every neuron update writes and reads one bit of the output buffer
        count((buf_bucket, "spike_buffer", rw, None), np.full_like(synops, N / 8))
    # synops: weight read (resident weights only), accumulator read-modify-write, accumulator add
    if layer.mapping.weights_resident:
        count((mem_bucket, mem, "read", None), synops * (n.weight_bits / 8))
    for rw in ("read", "write"):
        count((mem_bucket, mem, rw, None), synops * acc_b)
    count((logic_bucket, "logic", "add", n.accumulator_bits), synops)
    ones = np.ones_like(synops)
    if is_psn_layer(layer):  # sec. 11: accumulator and k - 1 history entries, k tap products
        k = k_of(layer)
        h_bits = n.membrane_bits + n.psn_tap_bits + (math.ceil(math.log2(k)) if k > 1 else 0)
        for rw in ("read", "write"):
            count(
                (mem_bucket, mem, rw, None),
                ones * N * (acc_b + (k - 1) * math.ceil(n.membrane_bits / 8)),
            )
        count((logic_bucket, "logic", "add", n.accumulator_bits), ones * N)
        count((logic_bucket, "logic", "compare", n.membrane_bits), ones * 2 * N)
        count((logic_bucket, "logic", "mul", max(n.membrane_bits, n.psn_tap_bits)), ones * k * N)
        count((logic_bucket, "logic", "add", h_bits), ones * (k - 1) * N)
        count((logic_bucket, "logic", "compare", h_bits), ones * N)
        return acts
    # neuron updates: membrane and accumulator read and written
    for rw in ("read", "write"):
        count((mem_bucket, mem, rw, None), ones * N * (v_b + acc_b))
    if on_at:  # integrator on the AT unit: v1 + a + b, two saturation compares, the leak
        count((logic_bucket, "logic", "add", v_bits), ones * 2 * N)
        count((logic_bucket, "logic", "compare", v_bits), ones * 2 * N)
        if layer.leak_shift > 0:
            count((logic_bucket, "logic", "add", v_bits), ones * N)
        return acts
    # PE neuron: v1 + a + b at accumulator width, 2 saturation + 1 threshold compare, leak, reset
    count((logic_bucket, "logic", "add", n.accumulator_bits), ones * 2 * N)
    count((logic_bucket, "logic", "compare", n.membrane_bits), ones * 3 * N)
    if layer.leak_shift > 0:
        count((logic_bucket, "logic", "add", n.membrane_bits), ones * N)
    if layer.current_shift > 0:  # (a + r) >> c
        count((logic_bucket, "logic", "shift", n.accumulator_bits), ones * N)
    if layer.reset == "subtract":
        count((logic_bucket, "logic", "add", n.membrane_bits), spikes)
    return acts


def reference_costs(program, ref: ReferenceResult, costs: CostTable) -> ReferenceCosts:
    """Traffic, stalls, cycles and counted actions of every layer-timestep of ``ref``."""
    hw = program.hardware
    mem = hw.memory
    out = {}
    for l in program.layers:
        kinds = _traffic(program, l, ref)
        S, T = ref.synops[l.name].shape
        by = {w: np.zeros((S, T)) for w in ("glb_read", "glb_write", "dram")}
        for kind, b in kinds.items():
            by[kind.split(":")[1]] = by[kind.split(":")[1]] + b
        glb = by["glb_read"] + by["glb_write"]
        transfer = np.maximum(
            np.ceil(glb / mem.glb_bandwidth_bytes_per_cycle),
            np.ceil(by["dram"] / mem.dram_bandwidth_bytes_per_cycle),
        )
        compute = ref.compute_cycles[l.name]
        stall = np.maximum(0, transfer - compute)
        overhead = 0 if l.mapping.unit == "at" else hw.cycles.layer_overhead
        acts = _layer_actions(program, l, ref)
        acts[("glb", "glb", "read", None)] = by["glb_read"]
        acts[("glb", "glb", "write", None)] = by["glb_write"]
        acts[("dram", "dram", "move", None)] = by["dram"]
        out[l.name] = LayerCosts(
            glb_read_bytes=by["glb_read"],
            glb_write_bytes=by["glb_write"],
            dram_bytes=by["dram"],
            traffic=kinds,
            stall_cycles=stall,
            cycles=compute + stall + overhead,
            actions=acts,
            energy_pj=priced(acts, costs, (S, T)),
        )
    load = (
        0
        if program.input.encoding == "sequence"
        else math.ceil(int(np.prod(program.input.shape)) * program.input.bits / 8)
    )
    return ReferenceCosts(
        layers=out,
        input_load_bytes=load,
        input_load_cycles=math.ceil(load / mem.dram_bandwidth_bytes_per_cycle),
        costs=costs,
    )


# --------------------------------------------------------------------------- policies (sec. 5, 8)
def dtsnn_exit_reference(program, u: np.ndarray, theta: float) -> np.ndarray:
    """DTSNN exit timestep per sample, one sample and timestep at a time (eq. 5-7)."""
    out = program.output_layer
    logit = program.at.logit_scale if program.at is not None else 1.0
    S, T, C = u.shape
    exits = np.full(S, T, dtype=np.int64)
    for s in range(S):
        for t in range(1, T):
            z = [float(u[s, t - 1, i]) * out.scale * logit / t for i in range(C)]
            top = max(z)
            e = [math.exp(v - top) for v in z]
            tot = sum(e)
            h = -sum((p / tot) * math.log(p / tot) for p in e if p > 0)
            if h / math.log(C) < theta:
                exits[s] = t
                break
    return exits


def atsn_exit_reference(program, u: np.ndarray, cl_init: float, tau_cl: float) -> np.ndarray:
    """ATSN exit timestep per sample: the AT unit's integer test of sec. 5 after each timestep."""
    hw = program.hardware
    S, T, _ = u.shape
    sig, _ = at_sigma(
        u, exp_table(hw), exp_mult=program.at.exp_mult, d_clip=program.at.d_clip, hw=hw
    )
    cl = cl_sequence(cl_init, tau_cl, T, hw)
    exits = np.full(S, T, dtype=np.int64)
    for s in range(S):
        for t in range(1, T):
            if at_exit(int(sig[s, t - 1].sum()), int(cl[t - 1]), hw):
                exits[s] = t
                break
    return exits


def _leakage_mw(program, costs: CostTable, policy: str) -> float:
    """Always-on power (sec. 8): per PE its data memory, two spike buffers, two adders, three
    comparators and two registers (plus a tap multiplier with sliding-PSN layers); the AT unit's
    memory, two spike buffers, two multipliers, two adders, a comparator and two registers; every
    GLB bank; the DTSNN lookup table when that policy runs."""
    from atsnn.psn import has_psn

    hw = program.hardware
    pe = {"pe_data_memory": 1, "spike_buffer": 2, "adder16": 2, "comparator16": 3, "register16": 2}
    if has_psn(program):
        pe["multiplier16"] = 1
    at = {
        "at_data_memory": 1,
        "spike_buffer": 2,
        "multiplier16": 2,
        "adder16": 2,
        "comparator16": 1,
        "register16": 2,
    }
    mw = hw.pe_count * sum(k * costs.leakage_mw(c) for c, k in pe.items())
    mw += hw.array.at_units * sum(k * costs.leakage_mw(c) for c, k in at.items())
    mw += hw.memory.glb_banks * costs.leakage_mw("glb_bank")
    if policy == "dtsnn":
        mw += costs.leakage_mw("dtsnn_lut")
    return mw


def _policy_unit_actions(program, policy: str) -> dict[Action, float]:
    """Actions of the exit test per timestep (sec. 8), for ``C`` classes."""
    hw = program.hardware
    C = program.output_layer.neurons
    if policy == "atsn":
        at = hw.at
        return {
            ("at_unit", "logic", "mul", max(at.membrane_bits, at.exp_table_value_bits)): 2 * C,
            ("at_unit", "at_data_memory", "read_access", None): 2 * C,
            ("at_unit", "logic", "add", at.exp_table_value_bits): 2 * C,
            ("at_unit", "logic", "add", 32): C,
            ("at_unit", "logic", "mul", max(at.cl_frac_bits, 32)): 2,
            ("at_unit", "logic", "compare", 32): 1,
        }
    if policy == "dtsnn":
        return {
            ("at_unit", "dtsnn_lut", "read_access", None): 2 * C,
            ("at_unit", "logic", "mul", 16): 2 * C,
            ("at_unit", "logic", "add", 32): 2 * C,
            ("at_unit", "logic", "compare", 32): 1,
        }
    return {}


def reference_policy(
    program,
    ref: ReferenceResult,
    rc: ReferenceCosts,
    policy: str,
    *,
    theta: float | None = None,
    cl_init: float | None = None,
    tau_cl: float | None = None,
) -> ReferencePolicy:
    """Exit timestep, cycles and energy per component of each inference under ``policy``."""
    hw = program.hardware
    S, T, C = ref.u.shape
    if policy == "fixed":
        exits = np.full(S, T, dtype=np.int64)
    elif policy == "dtsnn":
        exits = dtsnn_exit_reference(program, ref.u, theta)
    else:
        exits = atsn_exit_reference(program, ref.u, cl_init, tau_cl)
    unit_cycles = hw.cycles.at_exp * C + hw.cycles.at_decision if policy != "fixed" else 0
    unit_pj = sum(n * price(a, rc.costs) for a, n in _policy_unit_actions(program, policy).items())
    cycles = np.zeros(S)
    energy = {c: np.zeros(S) for c in DYNAMIC}
    for s in range(S):
        steps = int(exits[s])
        cycles[s] = rc.input_load_cycles + steps * unit_cycles
        for lc in rc.layers.values():
            cycles[s] += lc.cycles[s, :steps].sum()
            for c in DYNAMIC:
                energy[c][s] += lc.energy_pj[c][s, :steps].sum()
        energy["at_unit"][s] += steps * unit_pj
        energy["dram"][s] += rc.input_load_bytes * rc.costs.dram_pj_per_byte
    seconds = cycles / hw.system.clock_hz
    energy["leakage"] = _leakage_mw(program, rc.costs, policy) * 1e-3 * seconds * 1e12
    predicted = np.array(
        [int(np.argmax(ref.u[s, exits[s] - 1])) for s in range(S)], dtype=np.int64
    )
    return ReferencePolicy(
        exit_t=exits, predicted=predicted, cycles=cycles, energy_by_component=energy
    )
