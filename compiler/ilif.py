"""iLIF conversion (seed 003, SpikeConverter): conversion mode, float semantics, quantizer, NIR convention.

An ANN converted for iLIF has the same parameters as the rate-coded IF conversion (weights
``W_l * lambda_{l-1}``, biases, thresholds ``lambda_l``, soft reset); what changes is the neuron
(docs/hardware.md sec. 10):

- accumulate phase, steps t = 1..A: ``V <- 2 V + a_t`` (no firing), ``a_t`` the synaptic current
  of the source's spikes of step t; the bias and a direct multi-bit input arrive once, at step 1,
  with twice their weight, so ``V_A = 2**A * (W h + b + V_0)``. ``A = T`` for a layer fed by
  spikes; ``A = 1`` for a layer fed only by the direct input (it has nothing to wait for, and its
  membrane does not grow by T bits);
- fire phase, steps t = 1..T: ``V <- 2 V``; ``s_t = [V >= Theta]``; ``V <- V - Theta s_t`` with
  ``Theta = 2**A * lambda``. The spikes are the binary expansion of ``clip(W h + b, 0, lambda) /
  lambda``, most significant bit first; the next layer's accumulate step t consumes ``s_t``;
- the output integrator doubles too (``u <- 2 u + a_t``), so ``u_A = 2**A * logits``.

``V_0 = offset * lambda * 2**-T`` (``offset = 0.5``: half an output LSB) turns the truncating
expansion into rounding. A network is built for one T (``FloatLayer.extra["ilif"]``).

NIR has no iLIF node. Convention (written by :func:`nir_metadata`, read by :func:`extra_from_nir`
and :func:`finish_import`): every hidden layer is an ``IF`` node (``r = 1``, ``v_threshold =
lambda``, weights and biases as in the IF conversion) with metadata ``neuron_model = "ilif"``,
``ilif_k = 2``, ``ilif_T = T``, ``ilif_offset`` (fraction of an output LSB) and ``reset_mode =
"subtract"``; the graph metadata carries ``ilif_T``. The output integrator is written as for IF
(a terminal weighted node) and doubles because the network is iLIF. A reader that ignores the
metadata sees a valid rate-coded IF conversion of the same ANN.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import numpy as np

from atsnn import ilif as core
from atsnn.config import HardwareConfig
from atsnn.errors import ConversionError, NirImportError, QuantizationError
from atsnn.program import Layer, Synapse
from atsnn.compiler.ir import FloatLayer, FloatNetwork

#: default rounding offset of the fire phase (fraction of one output LSB lambda * 2**-T)
OFFSET = 0.5
#: the fire phase doubles values below the threshold: Theta <= membrane_max // HEADROOM keeps 2 V in range
#: and keeps a saturated membrane (>= Theta) firing on every step (saturation at the top = the ANN clip)
HEADROOM = 2
#: smallest threshold in weight LSB per 2**T (lambda / weight LSB) the quantizer accepts; below it the
#: weights are too coarse to be worth running (raise instead, naming the widths that would fit)
MIN_LEVELS = 8


# ----------------------------------------------------------------------------- conversion
def _check_T(T) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ConversionError(f"iLIF T must be an integer >= 1, not {T!r}")
    return int(T)


def to_ilif(net: FloatNetwork, T: int, *, offset: float = OFFSET) -> FloatNetwork:
    """The iLIF network of an ANN-converted IF network (same parameters; a copy)."""
    T = _check_T(T)
    if not 0.0 <= offset < 1.0:
        raise ConversionError(f"iLIF offset must be in [0, 1), not {offset!r}")
    if net.input_encoding != "direct":
        raise ConversionError("iLIF conversion needs direct (multi-bit) input encoding")
    out = copy.deepcopy(net)
    for l in out.layers:
        A = 1 if all(s.source == "input" for s in l.synapses) else T
        if l.neuron == "integrator":
            if l.beta != 1.0:
                raise ConversionError(f"layer '{l.name}': a leaky output integrator cannot be iLIF (it doubles)")
            l.extra[core.EXTRA_KEY] = {"T": T, "k": core.GAIN, "accumulate_steps": A}
            continue
        if l.neuron not in ("if", core.KIND):
            raise ConversionError(f"layer '{l.name}': neuron '{l.neuron}' cannot become iLIF; only IF layers of an "
                                  "ANN conversion (no leak) can")
        if l.beta != 1.0:
            raise ConversionError(f"layer '{l.name}': a leaky layer (beta = {l.beta:g}) cannot become iLIF")
        if l.reset != "subtract":
            raise ConversionError(f"layer '{l.name}': iLIF needs soft reset (reset by subtraction); reset "
                                  f"'{l.reset}' would discard the remainder that carries the lower bits")
        thr = np.asarray(l.threshold, dtype=np.float64)
        l.neuron = core.KIND
        l.v_init = offset * thr * 2.0 ** -T
        l.extra[core.EXTRA_KEY] = {"T": T, "k": core.GAIN, "accumulate_steps": A, "offset": float(offset)}
    out.decisions = dict(out.decisions)
    out.decisions[core.EXTRA_KEY] = {"T": T, "k": core.GAIN, "offset": float(offset)}
    return out


def convert_ilif(ann: list, input_shape, calib, *, T: int, threshold: str = "p99.9", v_init: str = "half",
                 name: str = "converted_ilif") -> FloatNetwork:
    """Convert an ANN to an iLIF SNN for T steps (thresholds as :func:`atsnn.compiler.convert.convert`).

    ``v_init``: ``"half"`` (round the T-bit output, offset 0.5 LSB) or ``"zero"`` (truncate).
    """
    from atsnn.compiler.convert import convert
    if v_init not in ("half", "zero"):
        raise ConversionError(f"iLIF v_init must be 'half' or 'zero', not {v_init!r} (LMPC calibrates rate "
                              "coding, not the binary expansion)")
    net = convert(ann, input_shape, calib, threshold=threshold, v_init="zero", name=name)
    return to_ilif(net, T, offset=OFFSET if v_init == "half" else 0.0)


def retarget(net: FloatNetwork, T: int) -> FloatNetwork:
    """The same iLIF network built for another T (recomputes the rounding offset)."""
    T = _check_T(T)
    offs = [core.layer_params(l).get("offset", OFFSET) for l in net.layers if l.neuron == core.KIND]
    return to_ilif(net, T, offset=offs[0] if offs else OFFSET)


def prepare(net: FloatNetwork, *, T: int | None = None) -> FloatNetwork:
    """Compile-time hook: checks an iLIF network and rebuilds it for ``T`` when one is given."""
    if not core.is_ilif(net):
        if T is not None:
            raise ConversionError(f"the iLIF timestep option (T = {T}) applies to iLIF models only; "
                                  f"'{net.name}' has no iLIF layer")
        return net
    t0 = core.network_T(net.layers)
    for l in net.layers:
        if l.neuron not in (core.KIND, "integrator") or core.layer_params(l) is None:
            raise ConversionError(f"layer '{l.name}': neuron '{l.neuron}' in an iLIF network; every spiking layer "
                                  "must be iLIF")
        if l.neuron == core.KIND and l.reset != "subtract":
            raise ConversionError(f"layer '{l.name}': iLIF needs soft reset (reset by subtraction), not "
                                  f"'{l.reset}'")
    if T is not None and T != t0:
        return retarget(net, T)
    return net


# ----------------------------------------------------------------------------- float semantics
def run_float_ilif(net: FloatNetwork, x: np.ndarray, T: int, *, per_neuron: bool = False):
    """Float iLIF SNN (module docstring); returns :class:`atsnn.compiler.float_sim.FloatRun`.

    ``u[:, t]`` is the output integrator after accumulate step t+1 (``u[:, T-1] = 2**A * logits``).
    ``spike_counts[layer][:, t]`` are the spikes of fire step t+1.
    """
    from atsnn.compiler.float_sim import FloatRun
    from atsnn.hwsim.ops import apply_synapse, synapse_input

    t0 = core.network_T(net.layers)
    if int(T) != t0:
        raise ConversionError(f"network '{net.name}' is built for iLIF at T = {t0}; run it with T = {t0}, not {T}")
    if net.input_encoding != "direct":
        raise ConversionError("the float iLIF simulation takes direct-encoded inputs")
    x = np.asarray(x, dtype=np.float32).reshape((-1,) + tuple(net.input_shape))
    b = x.shape[0]
    out = net.layer(net.output)
    u = np.zeros((b, T, out.neurons), np.float64)
    trains: dict[str, np.ndarray] = {}
    counts = {l.name: np.zeros((b, T), np.int64) for l in net.layers}
    totals = {l.name: np.zeros((b, l.neurons), np.int64) for l in net.layers} if per_neuron else None
    for l in net.layers:
        per = l.neurons // l.shape[0]
        A = core.accumulate_steps(l, T)
        v = np.tile(np.repeat(np.asarray(l.v_init, np.float64), per), (b, 1))
        bias = np.repeat(np.asarray(l.bias, np.float64), per)
        ws = [np.asarray(s.weight, np.float32) for s in l.synapses]
        for t in range(A):
            a = np.zeros((b, l.neurons), np.float64)
            for s, w in zip(l.synapses, ws):
                if s.source == "input":
                    if t == 0:
                        a += 2.0 * apply_synapse(s, synapse_input(s, x), w).reshape(b, -1)
                else:
                    src = trains[s.source][:, t].reshape((b,) + tuple(net.layer(s.source).shape))
                    a += apply_synapse(s, synapse_input(s, src), w).reshape(b, -1)
            if t == 0:
                a += 2.0 * bias
            v = 2.0 * v + a
            if l.name == net.output:
                u[:, t:] = v[:, None, :]
        if l.neuron == "integrator":
            continue
        thr = np.repeat(np.asarray(l.threshold, np.float64), per) * 2.0 ** A
        spk = np.zeros((b, T, l.neurons), np.float32)
        for t in range(T):
            v = 2.0 * v
            z = v >= thr if l.comparator == ">=" else v > thr
            v = np.where(z, v - thr, v)
            spk[:, t] = z
            counts[l.name][:, t] = z.sum(axis=1)
            if totals is not None:
                totals[l.name] += z
        trains[l.name] = spk
    return FloatRun(u=u, spike_counts=counts, neuron_spikes=totals)


# ----------------------------------------------------------------------------- quantizer
def _bits_for(value: int) -> int:
    """Signed membrane width whose ``membrane_max // HEADROOM`` holds ``value``."""
    return max(2, math.ceil(math.log2(HEADROOM * value + 1)) + 1)


def _per_channel_sum(wi: np.ndarray, op: str, c: int) -> np.ndarray:
    if op == "conv_transpose2d":
        return np.abs(wi).sum(axis=(0, 2, 3))
    per = np.abs(wi).reshape(wi.shape[0], -1).sum(axis=1)
    if op == "dense" and per.size != c:
        return per.reshape(c, -1).max(axis=1)
    return per


def quantize_layer(fl: FloatLayer, net: FloatNetwork, hw: HardwareConfig, input_scale: float):
    """Integer iLIF layer (or doubling output integrator) and its report row (docs/hardware.md sec. 10)."""
    from atsnn.compiler.quantize import _max_input

    p = core.layer_params(fl)
    T = int(p["T"])
    A = core.accumulate_steps(fl, T)
    c = fl.shape[0]
    integrator = fl.neuron == "integrator"
    thr = np.ones(c) if integrator else np.asarray(fl.threshold, dtype=np.float64)
    if np.any(thr <= 0) or not np.all(np.isfinite(thr)):
        raise QuantizationError(f"layer '{fl.name}': thresholds must be positive and finite")
    direct = net.input_encoding == "direct"
    ws, gains = [], []
    for syn in fl.synapses:
        first = syn.source == "input"
        gain = 2.0 if (first and direct) else 1.0  # a direct input arrives once, at step 1: twice its weight
        w = np.asarray(syn.weight, dtype=np.float64) * (input_scale if first else 1.0) * gain
        w = w / (thr.reshape(1, -1, 1, 1) if syn.op == "conv_transpose2d" else thr.reshape((-1,) + (1,) * (w.ndim - 1)))
        if not np.all(np.isfinite(w)):
            raise QuantizationError(f"layer '{fl.name}': weights from '{syn.source}' are not finite")
        ws.append(w)
        gains.append(gain)
    # bias and V_0 enter at step 1: 2**(A-1) * 2 (b + V_0) = 2**A (b + V_0)
    step1 = 2.0 * (np.asarray(fl.bias, dtype=np.float64) + np.asarray(fl.v_init, dtype=np.float64)) / thr
    wmax = max((float(np.abs(w).max()) if w.size else 0.0) for w in ws) if ws else 0.0
    wmax = wmax if wmax > 0 else 1.0
    notes: list[str] = []

    def ints(scale):
        out, clipped = [], 0
        for w in ws:
            wi = np.rint(w / scale)
            clipped += int(np.sum((wi < hw.weight_min) | (wi > hw.weight_max)))
            out.append(np.clip(wi, hw.weight_min, hw.weight_max).astype(np.int32))
        bi = np.rint(step1 / scale)
        bclip = int(np.sum((bi < hw.bias_min) | (bi > hw.bias_max)))
        return out, clipped, np.clip(bi, hw.bias_min, hw.bias_max).astype(np.int64), bclip

    def bounds(wis, bi):
        spike = np.zeros(c)
        once = np.abs(bi).astype(np.float64)
        for syn, wi, g in zip(fl.synapses, wis, gains):
            s = _per_channel_sum(wi, syn.op, c) * _max_input(syn, net, hw)
            if syn.source == "input" and direct:
                once = once + s
            else:
                spike = spike + s
        return spike, once

    if integrator:
        def worst_at(scale):
            wis_, _, bi_, _ = ints(scale)
            spike_, once_ = bounds(wis_, bi_)
            return float(((2.0 ** A - 1) * spike_ + 2.0 ** (A - 1) * once_).max(initial=0))

        base = wmax / hw.weight_max
        scale = base
        full_bits = int(math.ceil(math.log2(worst_at(base) + 1))) + 1
        for _ in range(8):  # the output never saturates: (2**A - 1) B_spike + 2**(A-1) B_step1 <= at_membrane_max
            worst = worst_at(scale)
            if worst <= hw.at_membrane_max:
                break
            scale *= worst / hw.at_membrane_max * 1.0001
        levels = wmax / scale  # the largest weight in LSB
        if worst > hw.at_membrane_max or levels < MIN_LEVELS:
            need = int(math.ceil(math.log2(worst_at(wmax / MIN_LEVELS) + 1))) + 1
            raise QuantizationError(
                f"layer '{fl.name}': the iLIF output integrator at T = {T} grows to 2**{A} x its logits and needs "
                f"at.membrane_bits >= {need} for {MIN_LEVELS}-level weights; the hardware has "
                f"{hw.at.membrane_bits}" + _width_hint(need, "at.membrane_bits", T, full=full_bits))
        if scale > base * 1.0001:
            notes.append(f"output weights coarsened to {levels:.0f} levels so that 2**{A} x the logits fit "
                         f"at.membrane_bits = {hw.at.membrane_bits} (full precision needs {full_bits})")
        wis, clipped, bi, bclip = ints(scale)
        theta = 0
    else:
        theta_full = max(1, int(math.floor(2.0 ** A * hw.weight_max / wmax)))
        cap = min(hw.threshold_max, hw.membrane_max // HEADROOM)
        theta = min(theta_full, cap)
        floor_theta = int(math.ceil(2.0 ** A * MIN_LEVELS))
        if theta < floor_theta:
            mb = _bits_for(floor_theta)
            tb = max(1, floor_theta.bit_length())
            mb_full = _bits_for(theta_full)
            raise QuantizationError(
                f"layer '{fl.name}': iLIF at T = {T} needs numeric.membrane_bits >= {mb} and threshold_bits >= {tb} "
                f"(a threshold of 2**{A} x {MIN_LEVELS} LSB, doubled in the fire phase); the hardware has "
                f"membrane_bits = {hw.numeric.membrane_bits}, threshold_bits = {hw.numeric.threshold_bits}"
                + _width_hint(mb, "numeric.membrane_bits", T, full=mb_full))
        if theta < theta_full:
            notes.append(f"threshold capped at {theta} LSB (2**{A} x {theta / 2.0 ** A:.1f}) by "
                         f"{'threshold_bits' if cap == hw.threshold_max else 'membrane_max // 2'}; full-precision "
                         f"weights need membrane_bits >= {_bits_for(theta_full)}")
        scale = 2.0 ** A / theta
        wis, clipped, bi, bclip = ints(scale)
    spike, once = bounds(wis, bi)
    per_step = np.maximum(spike, once)
    if per_step.max(initial=0) > hw.accumulator_max:
        ch = int(np.argmax(per_step))
        raise QuantizationError(f"layer '{fl.name}': channel {ch} can accumulate {int(per_step[ch])} per step, more "
                                f"than numeric.accumulator_bits = {hw.numeric.accumulator_bits} allows "
                                f"({hw.accumulator_max}); widen the accumulator or reduce the fan-in")
    if clipped or bclip:
        warnings.warn(f"layer '{fl.name}': {clipped} weights and {bclip} biases clipped to the integer range")
    syns = [Synapse(source=s.source, op=s.op, weight=wi, input_shape=tuple(s.input_shape), stride=tuple(s.stride),
                    padding=tuple(s.padding), output_padding=tuple(s.output_padding), pool=s.pool,
                    flatten=bool(s.flatten), max_input=int(_max_input(s, net, hw)))
            for s, wi in zip(fl.synapses, wis)]
    extra = dict(fl.extra)
    extra[core.EXTRA_KEY] = dict(p)
    layer = Layer(name=fl.name, neuron=fl.neuron, shape=tuple(fl.shape), synapses=syns, bias=bi, threshold=int(theta),
                  v_init=np.zeros(c, dtype=np.int64), leak_shift=0, reset="subtract", v_reset=0,
                  comparator=fl.comparator, scale=float(scale), extra=extra)
    rep = dict(layer=fl.name, neuron=fl.neuron, scale=float(scale), threshold=int(theta), leak_shift=0,
               leak_factor=1.0, leak_error=0.0, weights_clipped=clipped, biases_clipped=bclip,
               max_accumulation=int(per_step.max(initial=0)), accumulator_limit=hw.accumulator_max, notes=notes,
               ilif_T=T, ilif_accumulate_steps=A, ilif_levels=(float(theta / 2.0 ** A) if not integrator else None))
    return layer, rep


def max_T(hw: HardwareConfig) -> int:
    """Largest T a spike-fed iLIF layer compiles for on ``hw`` (threshold 2**T x MIN_LEVELS LSB)."""
    cap = min(hw.threshold_max, hw.membrane_max // HEADROOM)
    return max(0, int(math.floor(math.log2(cap / MIN_LEVELS))))


def _width_hint(bits: int, key: str, T: int, *, full: int | None = None) -> str:
    if bits > 32:
        return (f"; no hardware description allows more than 32 bits: compile for a smaller T or use the float "
                f"SNN at T = {T}")
    extra = f" ({full} bits keep full-precision weights)" if full is not None and full != bits and full <= 32 else ""
    return f"; pass a hardware TOML with wider {key}{extra}"


def report(layers: list[Layer], hw: HardwareConfig) -> dict[str, Any]:
    """The program report's iLIF entry: T, phases, and what pipelining the phases saves in spike buffer."""
    T = core.network_T(layers)
    spiking = [l for l in layers if l.neuron == core.KIND]
    one = sum(math.ceil(l.neurons / 8) for l in spiking)
    return {"T": T, "k": core.GAIN, "accumulate_steps": T, "fire_steps": T,
            "spike_map_bytes_pipelined": one, "spike_map_bytes_unpipelined": one * T,
            "unpipelined_fits_glb": one * T <= hw.memory.glb_bytes,
            "note": "fire step t of a layer feeds accumulate step t of the next (pipelined): one step of spike map "
                    "per layer instead of T; no early exit (the output exists after all T steps)"}


# ----------------------------------------------------------------------------- NIR convention
def nir_metadata(layer: FloatLayer) -> dict[str, Any]:
    """Extra IF-node metadata of an iLIF layer (empty for other layers)."""
    if layer.neuron != core.KIND:
        return {}
    p = core.layer_params(layer)
    return {"neuron_model": "ilif", "ilif_k": int(p.get("k", core.GAIN)), "ilif_T": int(p["T"]),
            "ilif_offset": float(p.get("offset", OFFSET))}


def graph_metadata(net: FloatNetwork) -> dict[str, Any]:
    T = core.network_T(net.layers)
    return {} if T is None else {"ilif_T": int(T), "ilif_k": core.GAIN}


def _md_value(v):
    v = v.decode() if isinstance(v, bytes) else v
    if isinstance(v, np.ndarray):
        v = v.item() if v.size == 1 else v
    return v


def extra_from_nir(md: dict, node: str, where: str) -> dict[str, Any]:
    """``FloatLayer.extra`` entries for an IF node carrying the iLIF metadata (empty otherwise)."""
    model = _md_value(md.get("neuron_model", ""))
    if str(model) != "ilif":
        return {}
    try:
        T = int(_md_value(md["ilif_T"]))
        k = int(_md_value(md.get("ilif_k", core.GAIN)))
        offset = float(_md_value(md.get("ilif_offset", OFFSET)))
    except (KeyError, TypeError, ValueError) as exc:
        raise NirImportError(f"{where}: node '{node}': iLIF metadata needs an integer ilif_T ({exc})") from None
    if T < 1 or k != core.GAIN:
        raise NirImportError(f"{where}: node '{node}': iLIF metadata ilif_T = {T}, ilif_k = {k}; needs T >= 1 and "
                             f"k = {core.GAIN}")
    return {core.EXTRA_KEY: {"T": T, "k": k, "offset": offset}}


def finish_import(net: FloatNetwork, where: str) -> FloatNetwork:
    """Turn IF layers marked iLIF into iLIF layers; every spiking layer must then be iLIF."""
    marked = [l for l in net.layers if core.layer_params(l) is not None and l.neuron != "integrator"]
    if not marked:
        return net
    Ts = {core.layer_params(l)["T"] for l in marked}
    if len(Ts) > 1:
        raise NirImportError(f"{where}: iLIF layers disagree on T ({', '.join(map(str, sorted(Ts)))})")
    T = Ts.pop()
    for l in net.layers:
        if l.neuron == "integrator":
            continue
        p = core.layer_params(l)
        if p is None:
            raise NirImportError(f"{where}: node '{l.name}' ({l.neuron.upper()}) in an iLIF network; every spiking "
                                 "layer must be iLIF (metadata neuron_model = 'ilif')")
        if l.reset != "subtract":
            rule = next((d["rule"] for d in net.decisions.get("reset", []) if d["layer"] == l.name), "?")
            raise NirImportError(f"{where}: node '{l.name}': iLIF needs soft reset (reset by subtraction); reset "
                                 f"'{l.reset}' (from {rule}) is not supported")
        if l.beta != 1.0:
            raise NirImportError(f"{where}: node '{l.name}': an iLIF layer cannot leak")
    offs = core.layer_params(marked[0]).get("offset", OFFSET)
    for l in net.layers:
        if l.neuron != "integrator":
            l.neuron = "if"  # to_ilif rebuilds it (and its rounding offset) from the IF parameters
    return to_ilif(net, T, offset=offs)
