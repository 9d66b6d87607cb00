"""The float SNN: vectorised float32 execution of a :class:`FloatNetwork` (semantics in compiler/ir.py).

Used to compare the fixed-point program with the network it came from, and
as the functional-only baseline of the speed benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atsnn.compiler.ir import FloatNetwork
from atsnn.hwsim.ops import apply_synapse, synapse_input


@dataclass
class FloatRun:
    u: np.ndarray  # (batch, T, C) output membranes after each timestep
    spike_counts: dict[str, np.ndarray]  # layer -> (batch, T)
    neuron_spikes: dict[str, np.ndarray] | None = None  # layer -> (batch, N) spikes over all T (on request)
    currents: dict[str, np.ndarray] | None = None  # PSN layer -> (batch, T, N) input currents X (on request)


def _float_inputs(net: FloatNetwork, x: np.ndarray, T: int) -> np.ndarray:
    """Real inputs as float32: ``(batch, *input_shape)`` (direct) or ``(batch, T_in >= T, *input_shape)`` (sequence)."""
    from atsnn.errors import SimulationInputError
    shape = tuple(net.input_shape)
    x = np.asarray(x, dtype=np.float32)
    if net.input_encoding != "sequence":
        return x.reshape((-1,) + shape)
    if x.ndim < 2 or x.shape[1] < T or int(np.prod(x.shape[2:])) != int(np.prod(shape)):
        raise SimulationInputError(f"network '{net.name}' takes sequence inputs of shape (samples, >= {T}, "
                                   f"{', '.join(map(str, shape))}), not {x.shape}")
    return x.reshape(x.shape[:2] + shape)


def _psn_state(l, b: int) -> dict:
    """Float PSN state of one layer: the taps and the last k - 1 currents X (oldest first, zeros before step 1)."""
    from atsnn.psn import taps
    w = np.asarray(taps(l), np.float32)
    return dict(taps=w, hist=np.zeros((len(w) - 1, b, l.neurons), np.float32))


def _psn_fire_input(st: dict, x_now: np.ndarray) -> np.ndarray:
    """``H = sum_i W_i X[t-k+1+i]`` with ``X[t] = x_now``; shifts ``x_now`` into the history."""
    w, hist = st["taps"], st["hist"]
    h = w[-1] * x_now
    for i in range(len(w) - 1):
        h = h + w[i] * hist[i]
    if len(w) > 1:
        st["hist"] = np.concatenate([hist[1:], x_now[None]], axis=0)
    return h


def run_float(net: FloatNetwork, x: np.ndarray, T: int, *, per_neuron: bool = False,
              record_currents: bool = False) -> FloatRun:
    """Run ``net`` for ``T`` timesteps. ``x``: ``(batch, *input_shape)`` for direct encoding (the same real
    input every timestep) or ``(batch, T_in >= T, *input_shape)`` for sequence encoding (frame t at step t).

    ``per_neuron=True`` also returns each neuron's spike total over the T timesteps;
    ``record_currents=True`` returns every PSN layer's input currents ``X`` (batch, T, N) in ``currents``.
    """
    from atsnn.ilif import is_ilif
    from atsnn.psn import is_psn_layer
    if is_ilif(net):  # accumulate and fire phases (docs/hardware.md sec. 10)
        from atsnn.compiler.ilif import run_float_ilif
        return run_float_ilif(net, x, T, per_neuron=per_neuron)
    x = _float_inputs(net, x, T)
    sequence = net.input_encoding == "sequence"
    b = x.shape[0]
    v, w, bias, thr, psn = {}, {}, {}, {}, {}
    for l in net.layers:
        per = l.neurons // l.shape[0]
        v[l.name] = np.tile(np.repeat(np.asarray(l.v_init, np.float32), per), (b, 1))
        bias[l.name] = np.repeat(np.asarray(l.bias, np.float32), per)
        thr[l.name] = np.repeat(np.asarray(l.threshold, np.float32), per)
        if is_psn_layer(l):
            psn[l.name] = _psn_state(l, b)
        for i, s in enumerate(l.synapses):
            w[(l.name, i)] = np.asarray(s.weight, np.float32)
    out = net.layer(net.output)
    u = np.zeros((b, T, out.neurons), np.float32)
    counts = {l.name: np.zeros((b, T), np.int64) for l in net.layers}
    totals = {l.name: np.zeros((b, l.neurons), np.int64) for l in net.layers} if per_neuron else None
    currents = {n: np.zeros((b, T, net.layer(n).neurons), np.float32) for n in psn} if record_currents else None
    first_cache = {}
    for t in range(T):
        spikes = {}
        for l in net.layers:
            acc = np.zeros((b, l.neurons), np.float32)
            for i, s in enumerate(l.synapses):
                if s.source == "input" and sequence:
                    acc += apply_synapse(s, synapse_input(s, x[:, t]), w[(l.name, i)]).reshape(b, -1)
                elif s.source == "input":
                    if (l.name, i) not in first_cache:
                        first_cache[(l.name, i)] = apply_synapse(s, synapse_input(s, x), w[(l.name, i)]).reshape(b, -1)
                    acc += first_cache[(l.name, i)]
                else:
                    src = spikes[s.source].reshape((b,) + tuple(net.layer(s.source).shape))
                    acc += apply_synapse(s, synapse_input(s, src), w[(l.name, i)]).reshape(b, -1)
            if l.name in psn:  # sliding PSN (docs/hardware.md sec. 11): no membrane, no reset
                x_now = acc + bias[l.name]
                if currents is not None:
                    currents[l.name][:, t] = x_now
                h = _psn_fire_input(psn[l.name], x_now)
                z = h >= thr[l.name] if l.comparator == ">=" else h > thr[l.name]
            else:
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
    return FloatRun(u=u, spike_counts=counts, neuron_spikes=totals, currents=currents)
