"""Quantize a :class:`FloatNetwork` to the numeric contract (docs/hardware.md sec. 2).

Per layer: per-channel float thresholds are folded into the incoming weights,
bias, initial and reset potentials (``W_c / theta_c``), so the layer has one
threshold of 1.0; then one real scale ``s_l`` (the membrane LSB) is chosen so
the largest weight (times the real value of one input unit) uses the full
``weight_bits`` range, unless the threshold would not fit ``threshold_bits``.
Integer weights, threshold, bias, ``v_init`` and ``v_reset`` follow by
rounding; the leak factor maps to the nearest ``1 - 2**-k``. The accumulator
bound of contract sec. 2 is checked for every layer.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from atsnn.config import HardwareConfig
from atsnn.errors import QuantizationError
from atsnn.program import SHIFTED_KINDS, InputSpec, Layer, Synapse
from atsnn.compiler.ir import FloatLayer, FloatNetwork


#: the threshold takes at most 1/4 of the positive membrane range (docs/hardware.md sec. 9): measured on digits,
#: 1/2 .. 1/4 keep float accuracy, 1/16 loses 1.5 points to coarse first-layer weights, 1/32 collapses
MEMBRANE_HEADROOM = 4
#: smallest integer threshold the quantizer produces; weights beyond the range are clipped (with a warning)
MIN_THRESHOLD_LSB = 4


def leak_shift_for(beta: float, hw: HardwareConfig, layer: str) -> tuple[int, float]:
    """Nearest ``k`` with ``1 - 2**-k`` to ``beta`` (``k = 0``: no leak); returns (k, |error|)."""
    if beta >= 1.0:
        return 0, 0.0
    if beta <= 0.0:
        raise QuantizationError(
            f"layer '{layer}': leak factor {beta:g} cannot be made by a shift (needs > 0)"
        )
    best_k, best_err = 0, abs(1.0 - beta)
    for k in range(1, hw.max_leak_shift + 1):
        err = abs((1.0 - 2.0**-k) - beta)
        if err < best_err:
            best_k, best_err = k, err
    return best_k, best_err


#: input encodings whose first-layer values are multi-bit (fed bit-serially, sec. 3); "spikes" is binary
MULTI_BIT_ENCODINGS = ("direct", "sequence")


def _max_input(syn, net: FloatNetwork, hw: HardwareConfig) -> int:
    """Largest value of one input of ``syn`` (sec. 2): a pixel or a spike, times the sum-pool window."""
    one = 1
    if syn.source == "input" and net.input_encoding in MULTI_BIT_ENCODINGS:
        one = hw.input_max
    if syn.pool is not None:
        return one * syn.pool.kernel[0] * syn.pool.kernel[1]
    return one


def choose_input_scale(
    net: FloatNetwork, hw: HardwareConfig, calib: np.ndarray | None, input_max: float | None
) -> float:
    """Real value of one input LSB: ``input_max / (2**input_bits - 1)`` (multi-bit encodings; 1 for spikes)."""
    if net.input_encoding not in MULTI_BIT_ENCODINGS:
        return 1.0
    if input_max is None:
        if calib is None:
            raise QuantizationError(
                "the input range is unknown: give calibration data or input_max"
            )
        calib = np.asarray(calib, dtype=np.float64)
        if not np.all(np.isfinite(calib)):
            raise QuantizationError("calibration data contains NaN or inf")
        if calib.min() < 0:
            raise QuantizationError(
                f"calibration inputs must be non-negative (min {calib.min():g}); "
                "fold the normalisation into the first layer"
            )
        input_max = float(calib.max())
    if not input_max > 0:
        raise QuantizationError(f"input_max must be positive, not {input_max!r}")
    return float(input_max) / hw.input_max


def quantize_network(
    net: FloatNetwork, hw: HardwareConfig, *, input_scale: float, calib: np.ndarray | None = None
) -> tuple[list[Layer], InputSpec, list[dict[str, Any]]]:
    """Integer layers, the input spec and a per-layer quantization report.

    ``calib`` (real inputs) is used by sliding-PSN layers to bound their input current (atsnn.compiler.psn).
    """
    layers: list[Layer] = []
    report: list[dict[str, Any]] = []
    from atsnn.ilif import layer_params
    from atsnn.psn import has_psn, is_psn_layer

    psn_currents = None
    if has_psn(net) and calib is not None:
        from atsnn.compiler.psn import calibrated_current_max

        psn_currents = calibrated_current_max(net, calib)
    for fl in net.layers:
        if is_psn_layer(fl):  # sliding PSN (docs/hardware.md sec. 11)
            from atsnn.compiler.psn import quantize_layer as quantize_psn_layer

            layer, rep = quantize_psn_layer(
                fl,
                net,
                hw,
                input_scale,
                current_max=None if psn_currents is None else psn_currents[fl.name],
            )
        elif layer_params(fl) is not None:  # iLIF layer or doubling output integrator (sec. 10)
            from atsnn.compiler.ilif import quantize_layer

            layer, rep = quantize_layer(fl, net, hw, input_scale)
        else:
            layer, rep = _quantize_layer(fl, net, hw, input_scale)
        layers.append(layer)
        report.append(rep)
    inp = InputSpec(
        shape=tuple(net.input_shape),
        encoding=net.input_encoding,
        scale=float(input_scale),
        bits=hw.numeric.input_bits,
    )
    return layers, inp, report


def _quantize_layer(fl: FloatLayer, net: FloatNetwork, hw: HardwareConfig, input_scale: float):
    if fl.neuron in SHIFTED_KINDS:
        return _quantize_spiking_layer(fl, net, hw, input_scale)
    c = fl.shape[0]
    integrator = fl.neuron == "integrator"
    thr = np.ones(c) if integrator else np.asarray(fl.threshold, dtype=np.float64)
    if np.any(thr <= 0) or not np.all(np.isfinite(thr)):
        raise QuantizationError(f"layer '{fl.name}': thresholds must be positive and finite")
    ws = folded_weights(fl, thr, input_scale)
    bias = np.asarray(fl.bias, dtype=np.float64) / thr
    v_init = np.asarray(fl.v_init, dtype=np.float64) / thr
    wmax = max((float(np.abs(w).max()) if w.size else 0.0) for w in ws) if ws else 0.0
    if wmax == 0.0:
        wmax = 1.0
    scale = wmax / hw.weight_max
    notes = []
    # membrane headroom: the threshold uses at most 1/MEMBRANE_HEADROOM of the positive membrane range,
    # so a timestep's excess current above threshold is kept (not saturated) up to that many thresholds
    cap = min(hw.threshold_max, hw.membrane_max // MEMBRANE_HEADROOM)
    if not integrator and 1.0 / scale > cap:
        scale = 1.0 / cap
        notes.append(
            f"threshold capped at {cap} LSB for membrane headroom; small weights lose precision"
        )
    if not integrator and 1.0 / scale < MIN_THRESHOLD_LSB:
        scale = 1.0 / MIN_THRESHOLD_LSB
        notes.append(
            f"threshold raised to {MIN_THRESHOLD_LSB} LSB: the largest weights exceed the integer range and "
            "are clipped"
        )
    elif not integrator and 1.0 / scale < 8:
        notes.append(f"threshold is only {1.0 / scale:.1f} LSB: coarse firing resolution")
    syns, clipped, bi, bias_clipped, bound = integer_synapses(fl, ws, bias, scale, net, hw)
    vmin, vmax = (
        (hw.at_membrane_min, hw.at_membrane_max)
        if integrator
        else (hw.membrane_min, hw.membrane_max)
    )
    vi = np.clip(np.rint(v_init / scale), vmin, vmax).astype(np.int64)
    thr_int = 0 if integrator else int(round(1.0 / scale))
    k, leak_err = leak_shift_for(fl.beta, hw, fl.name)
    if fl.reset == "to_value":
        vr = fl.v_reset / float(thr[0]) if np.allclose(thr, thr[0]) else 0.0
        if not np.allclose(thr, thr[0]) and fl.v_reset != 0:
            raise QuantizationError(
                f"layer '{fl.name}': hard reset to {fl.v_reset:g} with per-channel thresholds "
                "cannot be folded"
            )
        v_reset = int(np.clip(round(vr / scale), vmin, vmax))
    else:
        v_reset = 0
    layer = Layer(
        name=fl.name,
        neuron=fl.neuron,
        shape=tuple(fl.shape),
        synapses=syns,
        bias=bi,
        threshold=thr_int,
        v_init=vi,
        leak_shift=k,
        reset=fl.reset if not integrator else "subtract",
        v_reset=v_reset,
        comparator=fl.comparator,
        scale=float(scale),
        extra=dict(fl.extra),
    )
    rep = _layer_report(fl, hw, k, leak_err, clipped, bias_clipped, bound, notes,
                        scale=float(scale), threshold=thr_int)
    return layer, rep


def _quantize_spiking_layer(
    fl: FloatLayer, net: FloatNetwork, hw: HardwareConfig, input_scale: float
):
    """An IF/LIF layer with per-channel scales, a current shift and channel thresholds (sec. 2, 9).

    Spikes are binary, so each output channel may live on its own scale: channel ``c``'s weights use
    the full width (its largest weight is ``weight_max`` LSB on its weight scale ``s_w[c]``), its
    membrane scale is ``s_v[c] = s_w[c] * 2**k`` with the layer's smallest current shift ``k`` that
    brings every threshold ``round(theta_c / s_v[c])`` within the headroom cap
    (``membrane_max / MEMBRANE_HEADROOM``, ``threshold_max``); bias and ``v_init`` are membrane
    values on ``s_v[c]``. A hard reset to a nonzero ``v_reset`` (one value per layer) keeps one
    scale for all channels. Channels whose accumulator bound (sec. 2) would not hold get coarser
    weights until it does (noted).
    """
    c = fl.shape[0]
    thr = np.asarray(fl.threshold, dtype=np.float64) * np.ones(c)
    if np.any(thr <= 0) or not np.all(np.isfinite(thr)):
        raise QuantizationError(f"layer '{fl.name}': thresholds must be positive and finite")
    raw = folded_weights(fl, np.ones(c), input_scale)
    wmax = np.zeros(c)
    for syn, w in zip(fl.synapses, raw):
        wmax = np.maximum(wmax, channel_weight_max(syn, w, c))
    top = float(wmax.max(initial=0.0))
    one_scale = fl.reset == "to_value" and fl.v_reset != 0
    if top == 0.0:
        wmax[:] = thr  # no weights: any scale; the threshold gets weight_max LSB
    elif one_scale:
        wmax[:] = top
    else:
        wmax = np.where(wmax > 0, wmax, top)  # a channel without weights takes the layer's scale
    scale_w = wmax / hw.weight_max
    notes = []
    raised = (
        thr / scale_w < MIN_THRESHOLD_LSB
    )  # weights beyond MIN_THRESHOLD_LSB thresholds: clipped
    if raised.any():
        scale_w = np.where(raised, thr / MIN_THRESHOLD_LSB, scale_w)
        notes.append(
            f"threshold raised to {MIN_THRESHOLD_LSB} LSB in {int(raised.sum())} channel(s): the "
            "largest weights exceed the integer range and are clipped"
        )
    cap = min(hw.threshold_max, hw.membrane_max // MEMBRANE_HEADROOM)
    bias = np.asarray(fl.bias, dtype=np.float64)
    for _ in range(64):  # the accumulator bound (sec. 2) on the chosen scales
        shift = 0
        while (
            thr / (scale_w * 2**shift)
        ).max() > cap + 0.5 and shift < hw.numeric.accumulator_bits - 1:
            shift += 1
        scale_v = scale_w * 2**shift
        ws = folded_weights(fl, scale_w, input_scale)
        syns, clipped, bi, bias_clipped, bound = integer_synapses(
            fl, ws, bias, 1.0, net, hw, bias_scale=scale_v, check=False
        )
        bound = bound - np.abs(bi)  # the bias is added after the shift, outside the accumulator
        over = bound > hw.accumulator_max
        if not over.any():
            break
        scale_w = np.where(over, scale_w * bound / hw.accumulator_max * (1 + 1e-9), scale_w)
        if one_scale:
            scale_w[:] = scale_w.max()
        if not any(n.startswith("weights coarsened") for n in notes):
            notes.append("weights coarsened to keep the accumulator bound")
    else:  # pragma: no cover - the loop converges in a step or two
        raise QuantizationError(f"layer '{fl.name}': no scale meets the accumulator bound")
    need = float((thr / scale_v).max())
    if need > hw.threshold_max + 0.5:
        unit = (
            f"input LSB {input_scale:.3g}"
            if any(s.source == "input" for s in fl.synapses)
            else "weights"
        )
        raise QuantizationError(
            f"layer '{fl.name}': its threshold needs {need:.3g} LSB even with the largest "
            f"current shift ({shift}), more than numeric.threshold_bits allows "
            f"({hw.threshold_max}): the weights are far below the threshold ({unit}); "
            "check --input-max or --calib"
        )
    thr_c = np.clip(np.rint(thr / scale_v), 1, hw.threshold_max).astype(np.int64)
    if int(thr_c.max()) < 8:
        notes.append(f"threshold is only {int(thr_c.max())} LSB: coarse firing resolution")
    vmin, vmax = hw.membrane_min, hw.membrane_max
    vi = np.clip(np.rint(np.asarray(fl.v_init, dtype=np.float64) / scale_v), vmin, vmax).astype(
        np.int64
    )
    k, leak_err = leak_shift_for(fl.beta, hw, fl.name)
    v_reset = (
        int(np.clip(round(fl.v_reset / float(scale_v.max())), vmin, vmax)) if one_scale else 0
    )
    per_channel = not np.all(thr_c == thr_c[0])
    layer = Layer(
        name=fl.name,
        neuron=fl.neuron,
        shape=tuple(fl.shape),
        synapses=syns,
        bias=bi,
        threshold=int(thr_c.max()),
        v_init=vi,
        leak_shift=k,
        reset=fl.reset,
        v_reset=v_reset,
        comparator=fl.comparator,
        scale=float(scale_v.max()),
        extra=dict(fl.extra),
        thresholds=thr_c if per_channel else None,
        current_shift=shift,
    )
    rep = _layer_report(fl, hw, k, leak_err, clipped, bias_clipped, bound, notes,
                        scale=float(scale_v.max()), current_shift=shift,
                        threshold=int(thr_c.max()), threshold_min=int(thr_c.min()),
                        per_channel_thresholds=bool(per_channel))
    return layer, rep


def channel_weight_max(syn, w: np.ndarray, c: int) -> np.ndarray:
    """Per output channel, the largest ``|w|`` of one synapse's weights (PyTorch layouts)."""
    a = np.abs(w)
    if syn.op == "conv_transpose2d":
        a = a.transpose(1, 0, 2, 3)
    if a.size == 0:
        return np.zeros(c)
    return a.reshape(c, -1).max(axis=1)


def _layer_report(fl: FloatLayer, hw: HardwareConfig, k: int, leak_err: float, clipped: int,
                  bias_clipped: int, bound: np.ndarray, notes: list[str], **fields) -> dict[str, Any]:
    """The quantization report row of a layer: its scale and threshold ``fields`` and the
    leak, clipping and accumulator figures every layer reports; warns when values were clipped."""
    if clipped or bias_clipped:
        warnings.warn(f"layer '{fl.name}': {clipped} weights and {bias_clipped} biases clipped to "
                      "the integer range")
    return dict(layer=fl.name, neuron=fl.neuron, **fields, leak_shift=k, leak_factor=float(fl.beta),
                leak_error=float(leak_err), weights_clipped=clipped, biases_clipped=bias_clipped,
                max_accumulation=int(bound.max(initial=0)), accumulator_limit=hw.accumulator_max,
                notes=notes)


def folded_weights(fl: FloatLayer, thr: np.ndarray, input_scale: float) -> list[np.ndarray]:
    """Per synapse, the float weights divided by the per-channel threshold, in units of one input LSB."""
    ws = []
    for syn in fl.synapses:
        unit = input_scale if syn.source == "input" else 1.0
        w = np.asarray(syn.weight, dtype=np.float64) * unit
        if syn.op == "conv_transpose2d":
            w = w / thr.reshape(1, -1, 1, 1)
        else:
            w = w / thr.reshape((-1,) + (1,) * (w.ndim - 1))
        if not np.all(np.isfinite(w)):
            raise QuantizationError(
                f"layer '{fl.name}': weights from '{syn.source}' are not finite"
            )
        ws.append(w)
    return ws


def channel_fanin(syn, w: np.ndarray, c: int) -> np.ndarray:
    """Per output channel, the largest ``sum |w|`` over one neuron's inputs (dense rows folded to channels)."""
    if syn.op == "conv_transpose2d":
        per_out = np.abs(w).sum(axis=(0, 2, 3))
    else:
        per_out = np.abs(w).reshape(w.shape[0], -1).sum(axis=1)
    if syn.op == "dense" and per_out.size != c:
        return per_out.reshape(c, -1).max(axis=1)
    return per_out


def integer_synapses(
    fl: FloatLayer,
    ws: list[np.ndarray],
    bias: np.ndarray,
    scale: float,
    net: FloatNetwork,
    hw: HardwareConfig,
    *,
    bias_scale: float | None = None,
    check: bool = True,
):
    """Round folded weights on ``scale`` and the bias on ``bias_scale`` (default ``scale``) and, when
    ``check``, raise unless the sec. 2 accumulator bound holds.

    Returns ``(synapses, weights_clipped, int_bias, biases_clipped, bound)`` with ``bound`` the per-channel
    largest ``sum |w| * max_input + |b|`` in LSB.
    """
    c = fl.shape[0]
    syns: list[Synapse] = []
    clipped = 0
    bound = np.zeros(c)
    for syn, w in zip(fl.synapses, ws):
        wi = np.rint(w / scale)
        clipped += int(np.sum((wi < hw.weight_min) | (wi > hw.weight_max)))
        wi = np.clip(wi, hw.weight_min, hw.weight_max).astype(np.int32)
        mx = _max_input(syn, net, hw)
        bound = bound + channel_fanin(syn, wi, c) * mx
        syns.append(
            Synapse(
                source=syn.source,
                op=syn.op,
                weight=wi,
                input_shape=tuple(syn.input_shape),
                stride=tuple(syn.stride),
                padding=tuple(syn.padding),
                output_padding=tuple(syn.output_padding),
                pool=syn.pool,
                flatten=bool(syn.flatten),
                max_input=int(mx),
            )
        )
    bi = np.rint(bias / (scale if bias_scale is None else bias_scale))
    bias_clipped = int(np.sum((bi < hw.bias_min) | (bi > hw.bias_max)))
    bi = np.clip(bi, hw.bias_min, hw.bias_max).astype(np.int64)
    bound = bound + np.abs(bi)
    if check and bound.max(initial=0) > hw.accumulator_max:
        ch = int(np.argmax(bound))
        raise QuantizationError(
            f"layer '{fl.name}': channel {ch} can accumulate {int(bound[ch])} per timestep, more "
            f"than numeric.accumulator_bits = {hw.numeric.accumulator_bits} allows "
            f"({hw.accumulator_max}); widen the accumulator or reduce the fan-in"
        )
    return syns, clipped, bi, bias_clipped, bound
