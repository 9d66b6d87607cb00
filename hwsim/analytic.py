"""Analytic mode: cycles, energy and FPS from per-layer firing rates alone (seed 001 eq. 19 style).

No weights are executed and no data is needed: each layer's events per
timestep are ``rate(source) x neurons(source)`` (input events are given or
assumed), synops are events x the mean fan-out of an event, cycles use the
mean lockstep cost of an event over input positions (contract sec. 6), and
energy uses the same per-action costs as the exact simulator. Assumption:
events are spread uniformly over input positions and timesteps. When the
rates measured by the exact mode are fed back, both modes agree within the
bound tested in ``tests/test_hwsim_analytic.py``. Sliding-PSN layers cost
their longer update (``cycles.update + k * cycles.psn_tap`` per neuron) and
sec. 11 energy; sequence inputs load one frame from DRAM per timestep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from atsnn.costs import CostTable, load_costs
from atsnn.errors import SimulationInputError
from atsnn.program import Program
from atsnn.hwsim.energy import COMPONENTS, ActionEnergy
from atsnn.hwsim.tables import STATS_MAX_POSITIONS, pass_max_sizes, synapse_stats


@dataclass
class AnalyticResult:
    T: int
    cycles_per_inference: float
    energy_per_inference_pj: float
    energy_by_component_pj: dict[str, float]
    layer_cycles: dict[str, float]  # per timestep
    layer_synops: dict[str, float]  # per timestep
    fps: float
    sampled: bool = False  # lockstep statistics estimated on sampled positions for some synapse


def estimate(program: Program, rates: dict[str, float], T: int, *, input_events_per_timestep: float,
             costs: CostTable | str | None = None, max_positions: int = STATS_MAX_POSITIONS) -> AnalyticResult:
    """Fixed-T estimate; ``rates`` maps every spiking layer to its mean firing rate (spikes / neuron / timestep).

    Works on any program size: the lockstep statistics come from :func:`atsnn.hwsim.tables.synapse_stats`
    (exact means for synapses with at most ``max_positions`` input positions, evenly spaced samples
    beyond; ``AnalyticResult.sampled`` says whether any synapse was sampled).
    """
    if T < 1:
        raise SimulationInputError(f"T must be >= 1, not {T}")
    if any(l.neuron == "ilif" for l in program.layers):
        raise SimulationInputError(f"program '{program.name}' is an iLIF program: the analytic mode does not model "
                                   "its two phases; use atsnn.hwsim.engine.simulate")
    from atsnn.psn import has_psn, is_psn_layer, k_of
    from atsnn.hwsim.engine import input_frame_bytes, input_load_bytes
    from atsnn.hwsim.psn import update_cycles_per_neuron
    hw = program.hardware
    ct = costs if isinstance(costs, CostTable) else load_costs(costs)
    act = ActionEnergy(hw, ct, psn=has_psn(program))
    sequence = program.input.encoding == "sequence"
    cyc = hw.cycles
    comp = {c: 0.0 for c in COMPONENTS}
    layer_cycles, layer_synops = {}, {}
    step_cycles = 0.0
    sampled = False
    for l in program.layers:
        if l.neuron != "integrator" and l.name not in rates:
            raise SimulationInputError(f"no firing rate given for layer '{l.name}'")
        m = l.mapping
        compute = synops = deliveries = glb_r = dram = 0.0
        for syn in l.synapses:
            st = synapse_stats(l, syn, max_positions=max_positions)
            sampled = sampled or st.sampled
            if syn.source == "input":
                ev = float(input_events_per_timestep)
                if sequence:  # a new frame from DRAM every timestep
                    dram += input_frame_bytes(program)
                else:
                    glb_r += input_frame_bytes(program)
            else:
                src = program.layer(syn.source)
                ev = rates[src.name] * src.neurons
                if src.mapping.spikes_in_dram:
                    dram += math.ceil(src.neurons / 8)
                else:
                    glb_r += math.ceil(src.neurons / 8)
            synops += ev * st.fanout
            for j in range(m.passes):
                compute += ev * (cyc.event * st.maxconn_any[j] + cyc.synop * st.maxconn[j])
                deliveries += ev * st.reached[j]
        compute += update_cycles_per_neuron(l, hw) * sum(pass_max_sizes(l))
        spikes = rates.get(l.name, 0.0) * l.neurons if l.neuron != "integrator" else 0.0
        spike_map = math.ceil(l.neurons / 8) if l.neuron != "integrator" else 0
        glb_w = 0 if m.spikes_in_dram else spike_map
        if m.spikes_in_dram:
            dram += spike_map
        if m.state_in_dram:
            dram += m.spilled_state_bytes_per_timestep
        else:
            glb_r += m.spilled_state_bytes_per_timestep / 2
            glb_w += m.spilled_state_bytes_per_timestep / 2
        if not m.weights_resident:
            wb = min(synops * hw.numeric.weight_bits / 8, m.streamed_weight_bytes_per_timestep)
            if m.weights_in_dram:
                dram += wb
            else:
                glb_r += wb
        transfer = max(math.ceil((glb_r + glb_w) / hw.memory.glb_bandwidth_bytes_per_cycle),
                       math.ceil(dram / hw.memory.dram_bandwidth_bytes_per_cycle))
        total = compute + max(0.0, transfer - compute) + (0 if m.unit == "at" else cyc.layer_overhead)
        layer_cycles[l.name] = total
        layer_synops[l.name] = synops
        step_cycles += total
        en = act.layer_energy(unit=m.unit, leak=l.leak_shift > 0, subtract=l.reset == "subtract", neurons=l.neurons,
                              deliveries=deliveries, synops=synops, spikes=spikes, glb_read_bytes=glb_r,
                              glb_write_bytes=glb_w, dram_bytes=dram, weights_streamed=not m.weights_resident,
                              psn_k=k_of(l) if is_psn_layer(l) else 0)
        for c, v in en.items():
            comp[c] += float(v) * T
    in_bytes = input_load_bytes(program)
    cycles = step_cycles * T + math.ceil(in_bytes / hw.memory.dram_bandwidth_bytes_per_cycle)
    comp["dram"] += in_bytes * act.dram
    comp["leakage"] = float(act.leakage_pj(cycles))
    energy = float(sum(comp.values()))
    return AnalyticResult(T=T, cycles_per_inference=cycles, energy_per_inference_pj=energy,
                          energy_by_component_pj=comp, layer_cycles=layer_cycles, layer_synops=layer_synops,
                          fps=hw.system.accelerators * hw.system.clock_hz / cycles, sampled=sampled)


def rates_from_trace(trace) -> tuple[dict[str, float], float]:
    """Measured mean firing rates per layer and input events per timestep of an exact-mode trace."""
    rates = {l.name: float(trace.layers[l.name]["spikes"].mean() / l.neurons)
             for l in trace.program.layers if l.neuron != "integrator"}
    first = [l for l in trace.program.layers if any(s.source == "input" for s in l.synapses)]
    ev = float(trace.layers[first[0].name]["events"].mean()) if first else 0.0
    return rates, ev
