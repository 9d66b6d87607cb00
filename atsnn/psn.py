"""Sliding parallel spiking neurons (seed 002, PSN): what every stage needs to recognise and check them.

A sliding PSN layer has no membrane and no reset. Each neuron keeps its last ``k - 1`` input
currents and fires when a k-tap FIR over them and the current input reaches the threshold
(seed 002 eq. 14-15)::

    H[t] = sum_{i<k} W_i X[t-k+1+i]        (X[j] = 0 for j < 1)
    S[t] = (H[t] >= V_th)

The layer carries ``extra["psn"] = {"mode": "sliding", "k": k, "taps": [W_0, ..., W_{k-1}]}``
(float taps in a :class:`atsnn.compiler.ir.FloatLayer`, integers plus ``"shift"`` in a compiled
:class:`atsnn.program.Layer`); the threshold is the layer's ordinary threshold. Integer
semantics, mapping, cycles and energy: docs/hardware.md sec. 11. The full and the masked PSN
(seed 002 eq. 9-13) tie their weights to absolute time steps of a trained T (a T x T matrix) and
the full one needs all T inputs before its first output; they cannot run step by step under the
AT unit's early exit, and every stage refuses them with :func:`unsupported_mode_message`.

This module is deliberately tiny and dependency-free: the program validator, the compiler,
hwsim, rtl and the CLIs all ask it the same questions.
"""

from __future__ import annotations

from typing import Any

#: neuron kind of a sliding-PSN layer
KIND = "psn"
#: key of the per-layer parameters in ``Layer.extra`` / ``FloatLayer.extra``
EXTRA_KEY = "psn"
#: the only PSN variant that runs step by step with a fixed number of taps
SLIDING = "sliding"
#: PSN variants of seed 002 that atsnn refuses, and why
UNSUPPORTED_MODES = {
    "full": "needs all T inputs before its first output (H = W X over the whole sequence)",
    "masked": "ties its weights to absolute timesteps of the trained T (a T x T masked matrix)",
}


def layer_params(layer: Any) -> dict[str, Any] | None:
    """``{"mode": "sliding", "k": ..., "taps": [...], ...}`` of a PSN layer, else None."""
    extra = getattr(layer, "extra", None) or {}
    p = extra.get(EXTRA_KEY)
    return p if isinstance(p, dict) else None


def is_psn_layer(layer: Any) -> bool:
    return getattr(layer, "neuron", None) == KIND


def has_psn(program_or_net: Any) -> bool:
    """True when any layer of a Program / FloatNetwork is a sliding PSN."""
    return any(is_psn_layer(l) for l in program_or_net.layers)


def taps(layer: Any) -> list:
    """The k tap weights ``[W_0, ..., W_{k-1}]`` (``W_{k-1}`` multiplies the current input)."""
    return list(layer_params(layer)["taps"])


def k_of(layer: Any) -> int:
    return len(taps(layer))


def history_entries(layer: Any) -> int:
    """Past input currents each neuron keeps: ``k - 1``."""
    return k_of(layer) - 1


def unsupported_mode_message(where: str, mode: str) -> str:
    """One-line refusal for a full or masked PSN (or an unknown mode) named by ``where``."""
    why = UNSUPPORTED_MODES.get(mode)
    if why is None:
        return (f"{where}: PSN mode {mode!r} is unknown; atsnn runs the sliding PSN (psn_mode = 'sliding', "
                "seed 002 eq. 14-15)")
    return (f"{where}: the {mode} PSN {why}, so it cannot run step by step or stop early at the AT unit's exit; "
            "atsnn runs only the sliding PSN (psn_mode = 'sliding', seed 002 eq. 14-15)")
