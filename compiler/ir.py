"""Float SNN intermediate representation: what importers and converters produce.

A :class:`FloatNetwork` has the same structure as a compiled
:class:`atsnn.program.Program` (layers of neurons, each with synaptic inputs
from the input or earlier layers) but keeps float parameters and no
mapping. Importers (NIR, the ANN converter, the torch front end) build it;
the quantizer turns it into integer layers; :mod:`atsnn.compiler.float_sim` runs it
as the float SNN that the fixed-point program is compared with.

Float semantics per timestep (mirrors contract sec. 3-5 without rounding or
saturation): ``a = sum over synapses op(W, x_src)``;
``v = beta * v + a + b`` (``beta = 1`` for IF, ``1 - 2**-k`` for LIF); fire
``v >= theta`` (or ``>``); soft reset ``v -= theta`` or hard ``v = v_reset``.
Spikes are 0/1 (weights already carry the presynaptic amplitude). The output
layer (``neuron == "integrator"``) integrates without firing.

A sliding PSN layer (``neuron == "psn"``, seed 002 eq. 14-15, docs/hardware.md
sec. 11) has no membrane: ``X[t] = a + b``, ``H[t] = sum_i W_i X[t-k+1+i]``
(``X[j] = 0`` before the first step), fire ``H >= theta``; it carries
``extra["psn"] = {"mode": "sliding", "k": k, "taps": [W_0, ..., W_{k-1}]}``
(float taps, ``W_{k-1}`` multiplies the current input).

Input encodings: ``"direct"`` (the same real image every timestep, inputs
``(samples, *input_shape)``), ``"spikes"`` (binary trains ``(samples, T,
*input_shape)``) and ``"sequence"`` (one real frame per timestep, inputs
``(samples, T_in, *input_shape)``, frame ``t`` at step ``t``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from atsnn.program import Pool


@dataclass(kw_only=True)
class FloatSynapse:
    source: str  # "input" or an earlier layer name
    op: str  # "dense" | "conv2d" | "conv_transpose2d"
    weight: np.ndarray  # float64, PyTorch layout (see atsnn.program.Synapse)
    input_shape: tuple[int, ...]  # shape seen by the op (after pool / flatten)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    output_padding: tuple[int, int] = (0, 0)
    pool: Pool | None = None  # sum-pool applied to the source map first
    flatten: bool = False


@dataclass(kw_only=True)
class FloatLayer:
    name: str
    neuron: str  # "if" | "lif" | "integrator" | "ilif" | "psn"
    shape: tuple[int, ...]
    synapses: list[FloatSynapse]
    bias: np.ndarray  # (C,) float64
    threshold: np.ndarray  # (C,) float64 (per output channel); unused for integrators
    v_init: np.ndarray  # (C,) float64
    beta: float = 1.0  # leak factor; 1.0 = no leak
    reset: str = "subtract"  # "subtract" | "to_value"
    v_reset: float = 0.0
    comparator: str = ">="
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))


@dataclass(kw_only=True)
class FloatNetwork:
    name: str
    input_shape: tuple[int, ...]
    layers: list[FloatLayer]
    output: str
    input_encoding: str = "direct"  # "direct" | "spikes" | "sequence" (see the module docstring)
    decisions: dict[str, Any] = field(default_factory=dict)  # how reset/dt/comparator/... were decided

    def layer(self, name: str) -> FloatLayer:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)
