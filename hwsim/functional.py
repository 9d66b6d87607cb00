"""Functional-only run of a Program: exact fixed-point membranes and spikes, no cycle or energy tables.

For programs too large for the exact simulator's connectivity tables (e.g.
YOLOv3-tiny at 416x416), this measures what the analytic mode needs: each
spiking layer's mean firing rate and the first layer's input events per
timestep. It uses the same synapse operators and neuron kernel as
:func:`atsnn.hwsim.engine.simulate`, so its spikes are the simulator's spikes
(tested on the programs both can run). Sliding-PSN layers and sequence
inputs (docs/hardware.md sec. 11) run as in the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atsnn.errors import SimulationInputError
from atsnn.program import Program
from atsnn.hwsim.inputs import quantize_input, quantize_sequence_input
from atsnn.hwsim.kernels import update_layer
from atsnn.hwsim.ops import EXACT_LIMIT, apply_synapse, synapse_input
from atsnn.hwsim.tables import event_positions


@dataclass
class FunctionalRun:
    spike_counts: dict[str, np.ndarray]  # spiking layer -> (samples, T) spikes per timestep
    input_events: np.ndarray  # (samples,) first-layer input events per timestep (bit-serial pixels; mean over steps)
    u: np.ndarray  # (samples, C) primary output membrane after the last timestep

    def rates(self, program: Program) -> dict[str, float]:
        """Mean spikes per neuron per timestep of every spiking layer."""
        return {name: float(c.mean() / program.layer(name).neurons) for name, c in self.spike_counts.items()}


def run_functional(program: Program, x: np.ndarray, *, T: int, batch_size: int = 1) -> FunctionalRun:
    """Real inputs for ``T`` timesteps: direct-encoded ``x`` (samples, *input.shape), or for a sequence program
    frames (samples, >= T, *input.shape)."""
    from atsnn.psn import is_psn_layer
    from atsnn.hwsim.psn import initial_history, update_psn_layer
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise SimulationInputError(f"T must be an integer >= 1, not {T!r}")
    sequence = program.input.encoding == "sequence"
    if program.input.encoding not in ("direct", "sequence"):
        raise SimulationInputError("run_functional takes multi-bit (direct or sequence) inputs")
    if any(l.neuron == "ilif" for l in program.layers):
        raise SimulationInputError(f"program '{program.name}' is an iLIF program: run it with atsnn.hwsim.engine.simulate")
    hw = program.hardware
    xq = quantize_sequence_input(program, x, T) if sequence else quantize_input(program, x)
    n = xq.shape[0]
    spiking = [l for l in program.layers if l.neuron != "integrator"]
    counts = {l.name: np.zeros((n, T), dtype=np.int64) for l in spiking}
    in_events = np.zeros(n)
    u = np.zeros((n, program.output_layer.neurons), dtype=np.int64)
    w32 = {(l.name, i): s.weight.astype(np.float32) for l in program.layers for i, s in enumerate(l.synapses)}
    for b0 in range(0, n, batch_size):
        xb = xq[b0:b0 + batch_size]
        B = xb.shape[0]
        v = {l.name: initial_history(l, B) if is_psn_layer(l) else
             np.repeat(np.asarray(l.v_init, dtype=np.int64), l.neurons // l.channels)[None, :].repeat(B, 0)
             for l in program.layers}
        bias = {l.name: np.repeat(np.asarray(l.bias, dtype=np.int64), l.neurons // l.channels)
                for l in program.layers}
        first: dict = {}
        for t in range(T):
            spikes: dict[str, np.ndarray] = {}
            for l in program.layers:
                acc = np.zeros((B, l.neurons), dtype=np.float32)
                for i, syn in enumerate(l.synapses):
                    if syn.source == "input" and sequence:  # frame t, new every timestep
                        xi = synapse_input(syn, xb[:, t])
                        acc += apply_synapse(syn, xi, w32[(l.name, i)]).reshape(B, -1)
                        in_events[b0:b0 + B] += event_positions(syn, xi, pixels=True).sum(axis=1) / T
                    elif syn.source == "input":
                        if i not in first.setdefault(l.name, {}):
                            xi = synapse_input(syn, xb)
                            first[l.name][i] = apply_synapse(syn, xi, w32[(l.name, i)]).reshape(B, -1)
                            if t == 0:
                                in_events[b0:b0 + B] += event_positions(syn, xi, pixels=True).sum(axis=1)
                        acc += first[l.name][i]
                    else:
                        src = spikes[syn.source].reshape((B,) + tuple(program.layer(syn.source).shape))
                        acc += apply_synapse(syn, synapse_input(syn, src), w32[(l.name, i)]).reshape(B, -1)
                if acc.size and max(float(acc.max()), -float(acc.min())) >= EXACT_LIMIT:
                    raise SimulationInputError(f"layer '{l.name}': accumulator exceeds the exact range; the program "
                                               "violates the accumulator bound (recompile)")
                update = update_psn_layer if is_psn_layer(l) else update_layer
                spk, c = update(l, hw, v[l.name], acc.astype(np.int64), bias[l.name])
                spikes[l.name] = spk
                if l.name in counts:
                    counts[l.name][b0:b0 + B, t] = c[:, 0]
        u[b0:b0 + B] = v[program.output]
    n_first = sum(1 for l in program.layers for s in l.synapses if s.source == "input")
    return FunctionalRun(spike_counts=counts, input_events=in_events / max(n_first, 1), u=u)
