"""The float SNN: vectorised float32 execution of a :class:`FloatNetwork` (semantics in compiler/ir.py).

Used to compare the fixed-point program with the network it came from, and
as the functional-only baseline of the speed benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compiler.ir import FloatNetwork
from hwsim.ops import apply_synapse, synapse_input


@dataclass
class FloatRun:
    u: np.ndarray  # (batch, T, C) output membranes after each timestep
    spike_counts: dict[str, np.ndarray]  # layer -> (batch, T)
    neuron_spikes: dict[str, np.ndarray] | None = None  # layer -> (batch, N) spikes over all T (on request)


def run_float(net: FloatNetwork, x: np.ndarray, T: int, *, per_neuron: bool = False) -> FloatRun:
    """Direct encoding: the same real input every timestep. ``x``: (batch, *input_shape).

    ``per_neuron=True`` also returns each neuron's spike total over the T timesteps.
    """
    from atsnn.ilif import is_ilif
    if is_ilif(net):  # accumulate and fire phases (docs/hardware.md sec. 10)
        from compiler.ilif import run_float_ilif
        return run_float_ilif(net, x, T, per_neuron=per_neuron)
    x = np.asarray(x, dtype=np.float32).reshape((-1,) + tuple(net.input_shape))
    b = x.shape[0]
    v, w, bias, thr = {}, {}, {}, {}
    for l in net.layers:
        per = l.neurons // l.shape[0]
        v[l.name] = np.tile(np.repeat(np.asarray(l.v_init, np.float32), per), (b, 1))
        bias[l.name] = np.repeat(np.asarray(l.bias, np.float32), per)
        thr[l.name] = np.repeat(np.asarray(l.threshold, np.float32), per)
        for i, s in enumerate(l.synapses):
            w[(l.name, i)] = np.asarray(s.weight, np.float32)
    out = net.layer(net.output)
    u = np.zeros((b, T, out.neurons), np.float32)
    counts = {l.name: np.zeros((b, T), np.int64) for l in net.layers}
    totals = {l.name: np.zeros((b, l.neurons), np.int64) for l in net.layers} if per_neuron else None
    first_cache = {}
    for t in range(T):
        spikes = {}
        for l in net.layers:
            acc = np.zeros((b, l.neurons), np.float32)
            for i, s in enumerate(l.synapses):
                if s.source == "input":
                    if (l.name, i) not in first_cache:
                        first_cache[(l.name, i)] = apply_synapse(s, synapse_input(s, x), w[(l.name, i)]).reshape(b, -1)
                    acc += first_cache[(l.name, i)]
                else:
                    src = spikes[s.source].reshape((b,) + tuple(net.layer(s.source).shape))
                    acc += apply_synapse(s, synapse_input(s, src), w[(l.name, i)]).reshape(b, -1)
            vv = l.beta * v[l.name] + acc + bias[l.name]
            if l.neuron == "integrator":
                v[l.name] = vv
                continue
            z = vv >= thr[l.name] if l.comparator == ">=" else vv > thr[l.name]
            vv = np.where(z, vv - thr[l.name] if l.reset == "subtract" else np.float32(l.v_reset), vv)
            v[l.name] = vv
            spikes[l.name] = z.astype(np.float32)
            counts[l.name][:, t] = z.sum(axis=1)
            if totals is not None:
                totals[l.name] += z
        u[:, t] = v[net.output]
    return FloatRun(u=u, spike_counts=counts, neuron_spikes=totals)
