"""Quantizer of sliding-PSN layers (seed 002 eq. 14-15; docs/hardware.md sec. 11).

Float layer (``atsnn.compiler.ir``): ``X[t] = sum op(W, x_src[t]) + b``, ``H[t] = sum_i W_i X[t-k+1+i]``,
fire ``H >= V_th`` (per-channel ``V_th``). Integer layer (``atsnn.hwsim.psn_reference.psn_update``):
``x = clamp(a + b, membrane_min, membrane_max)``, ``H = sum_i q_i h_i``, fire ``(H >> s) >= theta``.

Per layer:

1. per-channel thresholds are folded into the weights and bias (``W_c / V_th_c``), so ``V_th = 1``;
2. the layer scale ``s_l`` (real value of one LSB of ``x``) is the finest at which both the weights fit
   ``numeric.weight_bits`` and the current ``X`` fits ``membrane_max``:
   ``s_l = max(max|W| / weight_max, X_max / membrane_max)``, with ``X_max`` the calibrated 99.9th
   percentile of ``|X|`` when calibration inputs are given (:func:`calibrated_current_max`), else the
   sec. 2 accumulator bound ``max_c (sum |W| * max_input + |b|)`` (then ``x`` never saturates);
3. taps ``q_i = round(W_i / s_tap)`` with ``s_tap = max_i |W_i| / (2**(psn_tap_bits-1) - 1)``;
4. ``theta = round(V_th / (s_l * s_tap * 2**s))`` with ``s`` the smallest shift that makes
   ``theta <= threshold_max``; ``theta < 1`` is an error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from atsnn import psn
from atsnn.config import HardwareConfig
from atsnn.errors import QuantizationError
from atsnn.program import Layer
from atsnn.compiler.ir import FloatLayer, FloatNetwork

#: percentile of |X| over calibration neuron-steps that must fit the membrane range
CALIB_PERCENTILE = 99.9
#: calibration inputs used for the current statistics
CALIB_SAMPLES = 256
#: timesteps of the calibration run for direct-encoded inputs (sequence inputs run all their frames)
CALIB_T = 8
#: below this many LSB of H per threshold the firing decision is coarse (noted in the report)
COARSE_THETA_LSB = 16


def check_params(fl, hw: HardwareConfig) -> list[float]:
    """The layer's float taps after checking mode and k; one-line QuantizationError naming layer and key."""
    where = f"layer '{fl.name}'"
    p = psn.layer_params(fl)
    if p is None:
        raise QuantizationError(f"{where}: PSN layer without extra['{psn.EXTRA_KEY}'] (mode, k, taps)")
    mode = str(p.get("mode", psn.SLIDING))
    if mode != psn.SLIDING:
        raise QuantizationError(psn.unsupported_mode_message(where, mode))
    taps = [float(w) for w in p.get("taps", [])]
    k = len(taps)
    if "k" in p and int(p["k"]) != k:
        raise QuantizationError(f"{where}: PSN k = {p['k']} but {k} taps are given")
    if k < 1:
        raise QuantizationError(f"{where}: a sliding PSN needs k >= 1 taps")
    if k > hw.numeric.psn_max_taps:
        raise QuantizationError(f"{where}: PSN has k = {k} taps, more than numeric.psn_max_taps = "
                                f"{hw.numeric.psn_max_taps} (history registers per neuron: k - 1)")
    if not all(math.isfinite(w) for w in taps):
        raise QuantizationError(f"{where}: PSN taps are not finite: {taps}")
    return taps


def calibrated_current_max(net: FloatNetwork, calib: np.ndarray) -> dict[str, float]:
    """Per PSN layer: the 99.9th percentile of ``|X| / V_th`` (threshold-folded units) on calibration inputs."""
    from atsnn.compiler.float_sim import run_float
    x = np.asarray(calib)[:CALIB_SAMPLES]
    T = int(x.shape[1]) if net.input_encoding == "sequence" and x.ndim >= 2 else CALIB_T
    run = run_float(net, x, T, record_currents=True)
    out = {}
    for name, cur in run.currents.items():
        l = net.layer(name)
        thr = np.repeat(np.asarray(l.threshold, np.float64), l.neurons // l.shape[0])
        out[name] = float(np.percentile(np.abs(cur.astype(np.float64) / thr), CALIB_PERCENTILE))
    return out


def tap_quantization(taps: list[float], hw: HardwareConfig) -> tuple[list[int], float]:
    """``(q, s_tap)``: integer taps and the tap scale (all-zero taps: ``s_tap = 1``)."""
    qmax = (1 << (hw.numeric.psn_tap_bits - 1)) - 1
    wmax = max(abs(w) for w in taps)
    s_tap = wmax / qmax if wmax > 0 else 1.0
    return [int(round(w / s_tap)) for w in taps], s_tap


def threshold_and_shift(fl_name: str, theta_real_lsb: float, hw: HardwareConfig) -> tuple[int, int]:
    """Smallest shift ``s`` with ``round(theta_real_lsb / 2**s) <= threshold_max``; ``(theta, s)``."""
    s = 0
    while round(theta_real_lsb / 2 ** s) > hw.threshold_max:
        s += 1
    theta = int(round(theta_real_lsb / 2 ** s))
    if theta < 1:
        raise QuantizationError(f"layer '{fl_name}': the PSN threshold is {theta_real_lsb:.3g} LSB of H (< 1 after "
                                "rounding): the current scale s_l is too coarse for V_th; widen "
                                f"numeric.membrane_bits = {hw.numeric.membrane_bits} (the range of the current x)")
    return theta, s


def quantize_layer(fl: FloatLayer, net: FloatNetwork, hw: HardwareConfig, input_scale: float, *,
                   current_max: float | None = None) -> tuple[Layer, dict[str, Any]]:
    """Integer sliding-PSN layer and its report row (module docstring). ``current_max``: calibrated ``X_max``."""
    from atsnn.compiler.quantize import channel_fanin, folded_weights, integer_synapses, _max_input
    taps = check_params(fl, hw)
    c = fl.shape[0]
    thr = np.asarray(fl.threshold, dtype=np.float64)
    if thr.size != c or np.any(thr <= 0) or not np.all(np.isfinite(thr)):
        raise QuantizationError(f"layer '{fl.name}': PSN thresholds must be {c} positive finite values")
    ws = folded_weights(fl, thr, input_scale)
    bias = np.asarray(fl.bias, dtype=np.float64) / thr
    wmax = max((float(np.abs(w).max()) if w.size else 0.0) for w in ws) if ws else 0.0
    bound_real = np.abs(bias).copy()
    for syn, w in zip(fl.synapses, ws):
        bound_real = bound_real + channel_fanin(syn, w, c) * _max_input(syn, net, hw)
    if current_max is None:
        x_max, source = float(bound_real.max(initial=0.0)), "accumulator bound (sec. 2)"
    else:
        x_max, source = float(current_max), f"calibration p{CALIB_PERCENTILE:g} of |X|"
    s_weights = wmax / hw.weight_max
    s_current = x_max / hw.membrane_max
    scale = max(s_weights, s_current)
    if scale <= 0 or not math.isfinite(scale):
        scale = 1.0 / hw.weight_max  # no weights and no current: any scale works
    syns, clipped, bi, bias_clipped, bound = integer_synapses(fl, ws, bias, scale, net, hw)
    q, s_tap = tap_quantization(taps, hw)
    theta, shift = threshold_and_shift(fl.name, 1.0 / (scale * s_tap), hw)
    notes = []
    if theta < COARSE_THETA_LSB:
        notes.append(f"PSN threshold is only {theta} LSB of H >> {shift}: coarse firing resolution")
    if current_max is not None and bound_real.max(initial=0.0) > x_max:
        notes.append(f"currents above {x_max:.4g} (calibrated, threshold units) saturate at membrane_max")
    tap_err = max(abs(qi * s_tap - w) for qi, w in zip(q, taps))
    extra = dict(fl.extra)
    extra[psn.EXTRA_KEY] = {"mode": psn.SLIDING, "k": len(q), "taps": q, "shift": int(shift)}
    layer = Layer(name=fl.name, neuron=psn.KIND, shape=tuple(fl.shape), synapses=syns, bias=bi, threshold=theta,
                  v_init=np.zeros(c, dtype=np.int64), leak_shift=0, reset="subtract", v_reset=0,
                  comparator=fl.comparator, scale=float(scale), extra=extra)
    rep = dict(layer=fl.name, neuron=psn.KIND, scale=float(scale), threshold=theta, leak_shift=0, leak_factor=1.0,
               leak_error=0.0, weights_clipped=clipped, biases_clipped=bias_clipped,
               max_accumulation=int(bound.max(initial=0)), accumulator_limit=hw.accumulator_max, notes=notes,
               psn=dict(k=len(q), taps=q, shift=int(shift), tap_scale=float(s_tap), tap_max_error=float(tap_err),
                        current_max=x_max, current_max_source=source, scale_for_weights=float(s_weights),
                        scale_for_current=float(s_current),
                        scale_rule="weights" if s_weights >= s_current else "current"))
    return layer, rep
