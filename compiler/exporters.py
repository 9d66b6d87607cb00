"""Which framework wrote a NIR file, and the conventions it follows (docs/exporters.md).

NIR is continuous-time and stores no dt, no comparator and (before nir 1.0.6) no reset value;
every exporter fills the gaps its own way. :func:`recognise` reads the writer from the file (nir
version, node types, parameter patterns, node names, the batch dimension of the Input, metadata
``writer`` / ``framework`` where present) and returns a :class:`Convention`: the dt the writer
assumed, how its neurons discretise leak and input gain, its reset rule and its comparator, with
the evidence in ``reason``. :func:`dynamics` turns a neuron node's ``tau`` and ``r`` into the
per-step leak factor ``beta`` and input gain of the float SNN (compiler/ir.py).

Every convention gives way to an explicit compile option (``--dt``, ``--reset-mode``,
``--comparator``): an explicit option means the NIR standard's semantics for that aspect (forward
Euler with that dt for every node; the PE's plain reset). Files of unknown writers get the NIR
standard: Euler ``beta = 1 - dt/tau``, gain ``dt*r/tau`` (LIF, LI) or ``dt*r`` (IF, I); reset to
``v_reset`` for files written by nir >= 1.0.6 (by subtraction before); comparator ``>=``, the
project default, since the compile option cannot tell "not given" from its default.

Conventions (sources read: snnTorch 1.0.0 ``export_nir.py`` and ``_neurons/leaky.py``,
SpikingJelly 2.0.0 ``nir_exchange/to_nir.py`` and ``neuron.py``, Norse 1.1.0 and git 065a3b4
``utils/export_nir.py`` and ``functional/{iaf,lif_box,leaky_integrator_box,heaviside}.py``, Sinabs
3.1.3 ``nir.py`` and ``layers``, Rockpool 3.1.0 ``nn/modules/torch/nir.py`` and
``lif_neuron_torch.py``):

- snnTorch: ``Leaky`` -> LIF with its fixed dt = 1e-4, ``tau = dt/(1-beta)``, ``r = tau/dt`` (so
  ``v = beta v + I``), ``v_reset = 0`` whatever ``reset_mechanism`` says; the default reset is
  subtraction, computed from the previous step's membrane (``reset_delay``) and applied outside
  the leak: ``m[t] = beta m[t-1] + I[t] - thr S[t-1]``, ``S = m > thr``. The PE leaks the
  subtracted threshold; with the membrane offset ``c = thr (1-beta)/beta`` (``v = m + c``) and
  threshold ``thr/beta`` the PE's soft reset reproduces the recurrence exactly
  (:func:`snntorch_delayed_subtract`). ``Synaptic`` -> CubaLIF: refused.
- SpikingJelly: IF ``r = 1/dt`` and LIF ``tau = tau_sj * dt`` with ``r = 1`` (``decay_input``)
  or ``r = tau_sj``, export dt 1e-4 by default (the IF ``r`` gives it when present); hard reset
  to ``v_reset`` (soft-reset neurons cannot be exported); ``v_leak = v_reset``; comparator ``>=``.
- Norse: ``IAFCell`` -> IF ``r = 1``, dt-free (``v += I``); ``LIFBoxCell`` / ``LIBoxCell`` ->
  LIF / LI ``r = 1`` with ``tau = dt/tau_mem_inv`` in 1.1.0 (the per-step leak ``dt*tau_mem_inv``
  is then ``dt**2/tau``: NIR dt 1e-6 at Norse's dt 1e-3) or ``tau = 1/tau_mem_inv`` in git
  (NIR dt 1e-3); hard reset to ``v_reset``; comparator ``>`` (``heaviside``: ``x > 0``); 1.1.0
  writes the batch dimension into the Input. ``LIFCell`` (the default) -> CubaLIF: refused.
- Sinabs (pins nir <= 1.0.4): IAF -> IF ``r = 1`` (dt = 1 step) without ``v_reset``, reset by
  subtraction (the writer version's spec); LIF / ExpLeak -> ``r = 1``, tau in steps, exponential
  leak ``beta = exp(-1/tau)`` with normalised input ``(1 - beta) I``; comparator ``>=``. Sinabs'
  default spike function is ``MultiSpike`` (``floor(v/thr)`` spikes per step), which the file does
  not record: atsnn runs single spikes.
- Rockpool: ``LIFNeuronTorch`` -> LIF, ``ExpSynTorch`` -> LI, ``r = tau exp(-dt/tau)/dt`` (dt
  recovered from ``tau`` and ``r``), exponential leak ``beta = exp(-dt/tau)`` and gain 1,
  subtractive reset, comparator ``>=``; its default spike function emits up to 2**16 spikes per
  step, which the file does not record: atsnn runs single spikes. ``LIFTorch`` -> CubaLIF:
  refused. Inputs carry the batch (and time) dimensions of the sample data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from atsnn.errors import NirImportError

#: the time step a writer assumes when the file does not say
SNNTORCH_DT = 1e-4
SPIKINGJELLY_DT = 1e-4
NORSE_DT = 1e-3
FRAMEWORKS = ("snntorch", "spikingjelly", "norse", "sinabs", "rockpool")
#: node metadata keys atsnn's own writers (compiler/nir_export.py, the converters) use
ATSNN_KEYS = ("reset_mode", "v_init", "v_init_frac", "neuron_model")


@dataclass
class Convention:
    writer: str  # one of FRAMEWORKS, "atsnn" or "nir" (unknown: the NIR standard)
    reason: str
    dt: float | None = None  # the writer's dt (None: the NIR rule picks it)
    euler_dt: dict[str, float] = field(default_factory=dict)  # node type -> NIR dt (Norse)
    dt_free_if: bool = False  # IF / I: gain = r, no dt (Norse, Sinabs)
    exp_leak: str | None = None  # "steps": exp(-1/tau) (Sinabs) | "dt": exp(-dt/tau) (Rockpool)
    comparator: str | None = None
    reset: str | None = None  # the writer's reset for IF / LIF (None: by the nir version)
    reset_why: str = ""
    delayed_subtract: bool = False  # snnTorch's reset_delay (snntorch_delayed_subtract)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"name": self.writer, "reason": self.reason, "notes": list(self.notes)}


def _vals(node, name) -> np.ndarray:
    v = getattr(node, name, None)
    return np.zeros(0) if v is None else np.asarray(v, dtype=np.float64).ravel()


def _close(a, b, rtol=1e-4) -> bool:
    a = np.asarray(a, dtype=np.float64)
    return (a.size > 0 and bool(np.all(np.isfinite(a)))
            and bool(np.allclose(a, b, rtol=rtol, atol=0)))


def _text(v) -> str:
    v = v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v
    return v.decode() if isinstance(v, bytes) else str(v)


def rockpool_dt(tau: np.ndarray, r: np.ndarray) -> np.ndarray | None:
    """Solve ``r = tau exp(-dt/tau) / dt`` for dt per neuron (Rockpool's export), or None."""
    tau, r = np.asarray(tau, np.float64), np.asarray(r, np.float64)
    if tau.size == 0 or np.any(tau <= 0) or np.any(r <= 0) or not np.all(np.isfinite(tau * r)):
        return None
    x = np.full(tau.shape, 1e-3)  # x = dt / tau: r = exp(-x) / x, Newton on the logarithm
    for _ in range(80):
        f = -x - np.log(x) - np.log(r)
        x = np.clip(x - f / (-1.0 - 1.0 / x), 1e-12, 50.0)
    ok = np.allclose(np.exp(-x) / x, r, rtol=1e-6)
    return x * tau if ok else None


def _nice(x: float) -> bool:
    """1, 2 or 5 times a power of ten (a dt somebody typed)."""
    if not (x > 0 and math.isfinite(x)):
        return False
    m = x / 10 ** math.floor(math.log10(x))
    return any(abs(m - c) < 1e-4 * c for c in (1.0, 2.0, 5.0, 10.0))


def recognise(nodes: dict[str, Any], version: tuple | None, graph_metadata: dict | None,
              batch: bool = False) -> Convention:
    """The writer of a graph and its conventions (module docstring); ``Convention("nir")``
    if unknown. ``batch``: the Input shape had leading size-1 (batch) dimensions."""
    gmd = graph_metadata or {}
    own = [n for n, v in nodes.items()
           if any(k in (getattr(v, "metadata", None) or {}) for k in ATSNN_KEYS)]
    if own or "input_max" in gmd:
        why = f"node '{own[0]}' carries atsnn metadata" if own else "graph metadata input_max"
        return Convention("atsnn", f"{why} (compiler/nir_export.py): the NIR standard plus "
                                   "that metadata")
    for key in ("writer", "framework", "exporter", "source"):
        name = _text(gmd[key]).lower() if key in gmd else ""
        for w in FRAMEWORKS:
            if w in name:
                return _convention(w, f"graph metadata {key} = {_text(gmd[key])!r}", nodes)
    types = {n: type(v).__name__ for n, v in nodes.items()}
    lif = [v for n, v in nodes.items() if types[n] in ("LIF", "LI")]
    iff = [v for n, v in nodes.items() if types[n] in ("IF", "I")]
    names = set(nodes)
    fx_names = any(n.startswith("_") for n in names) or "input_1" in names
    if not lif and not iff:
        return Convention("nir", "no neuron node with writer-specific parameters")
    old = version is not None and version < (1, 0, 6)
    if lif and not iff:
        conv = _rockpool(lif, nodes)
        if conv is not None:
            return conv
    # snnTorch: LIF only (it cannot export IF), tau / r = 1e-4, v_leak = 0
    if (lif and not iff and not fx_names and not old
            and all(_close(_vals(v, "tau") / _vals(v, "r"), SNNTORCH_DT) for v in lif)
            and all(np.all(_vals(v, "v_leak") == 0) for v in lif)):
        return _convention("snntorch", "LIF nodes with tau/r = 1e-4 (snnTorch's fixed dt, tau = "
                           "dt/(1-beta), r = tau/dt), v_leak = 0, no IF node", nodes)
    # SpikingJelly: IF r = 1/dt != 1, or LIF r = 1 / r = tau/1e-4 with torch.fx node names
    if iff and not old and all(_vals(v, "r").size and not _close(_vals(v, "r"), 1.0) for v in iff):
        r = float(_vals(iff[0], "r")[0])
        if all(_close(_vals(v, "r"), r) for v in iff) and _nice(1.0 / r):
            return _convention("spikingjelly", f"IF r = {r:g} = 1/dt (SpikingJelly writes "
                               "r = 1/dt)", nodes, dt=1.0 / r)
    if lif and fx_names and not old and all(
            _close(_vals(v, "r"), 1.0) or _close(_vals(v, "r") * SPIKINGJELLY_DT, _vals(v, "tau"))
            for v in lif):
        return _convention("spikingjelly", "LIF nodes with r = 1 or r = tau/1e-4 and torch.fx "
                           f"node names ({', '.join(sorted(names)[:3])}, ...) as SpikingJelly's "
                           "export writes", nodes, dt=SPIKINGJELLY_DT)
    r_one = all(_close(_vals(v, "r"), 1.0) for v in lif + iff)
    if r_one and old:
        return _convention("sinabs", f"nir {'.'.join(map(str, version))} (< 1.0.6; Sinabs pins "
                           "nir <= 1.0.4) with r = 1 on every neuron node", nodes)
    if r_one and not old and batch and not fx_names:
        return _convention("norse", "Input shape with a leading batch dimension, r = 1 on every "
                           "neuron node, module-path node names, nir >= 1.0.6 (Norse's export "
                           "through nirtorch's extract_nir_graph)", nodes)
    return Convention("nir", "no exporter's parameter pattern matched")


def _rockpool(lif, nodes) -> Convention | None:
    """Rockpool: r = tau exp(-dt/tau) / dt for one typed dt on every LIF / LI node."""
    dts = [rockpool_dt(_vals(v, "tau"), _vals(v, "r")) for v in lif]
    if any(d is None for d in dts) or _close(_vals(lif[0], "r"), 1.0):
        return None
    d = np.concatenate(dts)
    if not (np.allclose(d, d[0], rtol=1e-5) and _nice(float(d[0]))):
        return None
    return _convention("rockpool", f"LIF/LI r = tau*exp(-dt/tau)/dt with dt = {float(d[0]):g} on "
                       "every neuron node (Rockpool's export)", nodes, dt=float(d[0]))


def _convention(w: str, reason: str, nodes, dt: float | None = None) -> Convention:
    types = [type(v).__name__ for v in nodes.values()]
    if w == "snntorch":
        return Convention(w, reason, dt=SNNTORCH_DT, comparator=">", reset="subtract",
                          delayed_subtract=True,
                          reset_why="snnTorch Leaky's default reset_mechanism='subtract' (it "
                                    "writes v_reset = 0 for every reset), one step late as "
                                    "snnTorch applies it")
    if w == "spikingjelly":
        return Convention(w, reason, dt=dt or SPIKINGJELLY_DT, comparator=">=", reset="to_value",
                          reset_why="SpikingJelly exports only hard-reset neurons (v <- v_reset)")
    if w == "norse":
        lif = [v for v in nodes.values() if type(v).__name__ in ("LIF", "LI")]
        legacy = any(np.any(_vals(v, "tau") < NORSE_DT) for v in lif)
        c = Convention(w, reason, dt=NORSE_DT, dt_free_if=True, comparator=">", reset="to_value",
                       reset_why="Norse resets IAF and LIFBox cells to v_reset")
        if lif:
            nir_dt = NORSE_DT ** 2 if legacy else NORSE_DT
            c.euler_dt = {"LIF": nir_dt, "LI": nir_dt}
            how = "dt/tau_mem_inv (Norse 1.1.0)" if legacy else "1/tau_mem_inv"
            c.notes.append(f"LIF/LI tau read as {how}: per-step leak dt/tau at NIR dt {nir_dt:g}")
        return c
    if w == "sinabs":
        # reset: by subtraction, as the spec of the nir <= 1.0.4 it pins says (version rule)
        c = Convention(w, reason, dt=1.0, dt_free_if=True, exp_leak="steps", comparator=">=")
        if "IF" in types or "LIF" in types:
            c.notes.append("Sinabs' default spike_fn MultiSpike (floor(v/thr) spikes per step) is "
                           "not recorded in NIR; run as single spikes (exact for SingleSpike)")
        return c
    if w == "rockpool":
        c = Convention(w, reason, dt=dt, exp_leak="dt", comparator=">=", reset="subtract",
                       reset_why="Rockpool's LIFNeuronTorch resets by subtracting the threshold")
        if "LIF" in types:
            c.notes.append("Rockpool's default spike function emits up to 2**16 spikes per step, "
                           "which NIR does not record; run as single spikes (exact for "
                           "max_spikes_per_dt=1)")
        return c
    raise ValueError(w)


def dynamics(conv: Convention, explicit_dt: bool, n: str, t: str, r: np.ndarray,
             tau: np.ndarray | None, dt: float, where: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Per-channel (beta, gain, rule) of neuron node ``n`` of type ``t``; ``tau`` is None for
    IF / I. ``explicit_dt``: dt came from the option, so forward Euler (the NIR standard)."""
    if tau is None:
        if conv.dt_free_if and not explicit_dt:
            return np.ones_like(r), r.copy(), f"{conv.writer}: v += r*I (dt-free)"
        return np.ones_like(r), dt * r, f"Euler: gain dt*r at dt = {dt:g}"
    if conv.exp_leak and not explicit_dt:
        step = 1.0 if conv.exp_leak == "steps" else float(conv.dt)
        beta = np.exp(-step / tau)
        if conv.exp_leak == "steps":  # Sinabs: norm_input scales the input by (1 - beta)
            return beta, r * (1.0 - beta), "sinabs: beta = exp(-1/tau), gain (1-beta)*r (steps)"
        return beta, r * step / (tau * beta), (f"rockpool: beta = exp(-dt/tau), gain "
                                               f"r*dt/(tau*beta) at dt = {step:g}")
    d = dt if explicit_dt else conv.euler_dt.get(t, dt)
    return 1.0 - d / tau, d * r / tau, f"Euler: beta = 1 - dt/tau, gain dt*r/tau at dt = {d:g}"


def snntorch_delayed_subtract(thr: np.ndarray, beta: float, bias: np.ndarray,
                              v_init: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PE parameters that reproduce snnTorch's late, unleaked subtraction exactly.

    snnTorch: ``m[t] = beta m[t-1] + I[t] - thr S[t-1]``, ``S[t] = m[t] > thr``. With ``c = thr
    (1 - beta) / beta``, the PE membrane ``v = m + c`` (``v_init = m_0 + c``, bias ``+ c (1 -
    beta)``) and threshold ``thr / beta``: the PE fires when ``m > thr`` and its ``v - thr/beta``,
    leaked by ``beta`` at the next step, subtracts exactly ``thr`` from ``m``. Returns
    (threshold, bias, v_init).
    """
    if beta >= 1.0:
        return thr, bias, v_init
    c = thr * (1.0 - beta) / beta
    return thr / beta, bias + c * (1.0 - beta), v_init + c
