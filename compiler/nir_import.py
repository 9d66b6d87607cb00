"""Import a NIR graph (file or in-memory ``nir.NIRGraph``) into a :class:`FloatNetwork`.

Supported nodes: ``Input``, ``Output``, ``Affine``, ``Linear``, ``Conv2d``
(strided; ``metadata['transposed'] = True`` marks a transposed convolution
with PyTorch ``ConvTranspose2d`` weight layout ``(Cin, Cout, kh, kw)`` and
optional ``metadata['output_padding']``, since NIR has no such node),
``Flatten``, ``SumPool2d``, ``AvgPool2d`` (a sum-pool whose ``1/(kh*kw)`` is
folded into the following weights), ``Scale`` (folded), ``IF``, ``LIF``
(leak factor ``beta = 1 - dt/tau``), and ``I`` / ``LI`` as the output
integrator. Several edges into one node add their currents (residual
connections). A chain of linear nodes ending in a neuron node becomes one
layer; a terminal linear node before ``Output`` becomes the output
integrator; a spiking last layer gets a spike-count readout integrator
(identity weights), so the AT unit sees cumulative spike counts.

Conventions that differ between exporters (docs/exporters.md, :mod:`atsnn.compiler.exporters`): the
writer is recognised from the file (``decisions['writer']``: name, evidence, notes) and its
conventions apply unless an option is given; an explicit option means the NIR standard for that
aspect.

- reset mode: the ``reset_mode`` argument, else node metadata ``reset_mode``, else the writer's
  convention (snnTorch: subtract, one step late; SpikingJelly, Norse: to ``v_reset``; Rockpool:
  subtract), else a writer version below 1.0.6 (which defined reset by subtraction; Sinabs),
  else the NIR standard since 1.0.6: ``to_value`` (``v <- v_reset``) for IF and LIF.
  ``FloatNetwork.decisions['reset']`` records the rule per layer.
- dt: a number is used as given (forward Euler for every node); ``"auto"`` takes the writer's dt
  and discretisation (``decisions['dynamics']``), else the dt with ``r*dt = 1`` (IF, I) or
  ``dt*r/tau = 1`` (LIF, LI) for every node; a leak factor outside (0, 1] fails naming the
  node, ``tau``, ``r``, the dt and ``--dt``.
- comparator: the argument, else the writer's (``>`` for snnTorch and Norse), else ``>=``.
- initial membrane: metadata ``v_init`` (array) or ``v_init_frac`` x threshold, else the
  ``v_init_frac`` argument, else 0 (plus snnTorch's reset offset).
- normalisation (``decisions['normalise']``): leading size-1 (batch) dimensions of the Input
  are dropped; Conv2d ``input_shape`` may be empty; ``Conv2d -> AvgPool2d/SumPool2d`` and
  ``Affine/Linear -> Affine/Linear`` chains before a neuron fold into one synapse; ``v_leak``
  becomes a constant current.

Sliding PSN (docs/hardware.md sec. 11): a ``Threshold`` node behind its
weighted node with metadata ``neuron_model = "psn"``, ``psn_mode =
"sliding"`` and ``psn_taps`` (k floats, ``W_{k-1}`` last) becomes a ``psn``
layer with threshold ``V_th = threshold``; ``psn_mode = "full"`` or
``"masked"`` is refused naming the node (:func:`atsnn.psn.unsupported_mode_message`).
Graph metadata ``input_encoding = "sequence"`` makes the input one frame per
timestep.

Everything else (``CubaLIF``, ``CubaLI``, ``Delay``, a ``Threshold``
without PSN metadata, ``Identity``, nested graphs, recurrent cycles, unknown
nodes) is rejected with :class:`NirImportError` naming the node and its type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from atsnn.errors import NirImportError
from atsnn.program import Pool
from atsnn.compiler.exporters import Convention, dynamics, recognise, snntorch_delayed_subtract
from atsnn.compiler.ir import FloatLayer, FloatNetwork, FloatSynapse

#: a layer whose weights or neurons would need more than this is rejected as absurd
MAX_LAYER_BYTES = 4 << 30

NEURON_TYPES = ("IF", "LIF", "I", "LI")
LINEAR_TYPES = ("Affine", "Linear", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d", "Scale")
REJECTED = {
    "CubaLIF": "current-based LIF (two state variables: what snnTorch Synaptic, Norse LIFCell "
               "and Rockpool LIFTorch export) is not supported by the PE; use a LIF without "
               "synaptic current (snnTorch Leaky, Norse LIFBoxCell, Rockpool LIFNeuronTorch); "
               "docs/exporters.md",
    "CubaLI": "current-based LI is not supported by the PE (docs/exporters.md)",
    "Delay": "synaptic delays are not supported",
    "Threshold": "a bare threshold node is not supported; use IF",
    "Identity": "identity nodes are not supported",
    "NIRGraph": "nested subgraphs are not supported; flatten the graph",
    "Conv1d": "Conv1d is not supported yet",
}


@dataclass
class _Ctx:
    """What the neuron nodes of one import share: the writer's convention and the options."""

    conv: Convention
    explicit_dt: bool
    reset_mode: str | None
    legacy_subtract: bool


# ----------------------------------------------------------------------------- values flowing along edges
@dataclass
class _Map:
    """A non-negative map produced by a source ("input" or a layer), with pre-ops."""

    source: str
    shape: tuple[int, ...]
    pool: Pool | None = None
    flatten: bool = False
    prescale: Any = None  # scalar or per-element factor to fold into the next weights


@dataclass
class _Current:
    """A synaptic current: sum of weighted terms plus a bias."""

    shape: tuple[int, ...]
    synapses: list[FloatSynapse] = field(default_factory=list)
    bias: np.ndarray | None = None


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _pair(x, name: str, node: str) -> tuple[int, int]:
    a = np.atleast_1d(np.asarray(x)).astype(np.int64).ravel()
    if a.size == 1:
        return int(a[0]), int(a[0])
    if a.size == 2:
        return int(a[0]), int(a[1])
    raise NirImportError(f"node '{node}': {name} must be an int or a pair, not {x!r}")


def _check_finite(node: str, name: str, a) -> np.ndarray:
    a = _arr(a)
    if not np.all(np.isfinite(a)):
        bad = "NaN" if np.isnan(a).any() else "inf"
        raise NirImportError(f"node '{node}': {name} contains {bad}")
    return a


def _per_channel(node: str, name: str, a, shape: tuple[int, ...]) -> np.ndarray:
    """Compress a scalar / per-neuron parameter to one value per channel (shape[0])."""
    a = _check_finite(node, name, a)
    c = shape[0]
    if a.size == 1:
        return np.full(c, float(a.ravel()[0]))
    n = int(np.prod(shape))
    if a.size == c:
        return a.ravel().copy()
    if a.size != n:
        raise NirImportError(f"node '{node}': {name} has {a.size} values, expected 1, {c} or {n} for shape {shape}")
    a = a.reshape(c, -1)
    if not np.all(a == a[:, :1]):
        raise NirImportError(f"node '{node}': {name} differs within a channel; the PE needs one value per channel")
    return a[:, 0].copy()


def _pool_out(shape, k, s, p, node):
    c, h, w = shape
    oh = (h + 2 * p[0] - k[0]) // s[0] + 1
    ow = (w + 2 * p[1] - k[1]) // s[1] + 1
    if oh < 1 or ow < 1:
        raise NirImportError(f"node '{node}': pooling {k} on input {shape} gives an empty output")
    return (c, oh, ow)


def conv_out_shape(in_shape, weight_shape, stride, padding, *, transposed=False, output_padding=(0, 0)):
    """Output shape of a (transposed) convolution, PyTorch semantics."""
    c, h, w = in_shape
    kh, kw = weight_shape[2], weight_shape[3]
    if transposed:
        cout = weight_shape[1]
        oh = (h - 1) * stride[0] - 2 * padding[0] + kh + output_padding[0]
        ow = (w - 1) * stride[1] - 2 * padding[1] + kw + output_padding[1]
    else:
        cout = weight_shape[0]
        oh = (h + 2 * padding[0] - kh) // stride[0] + 1
        ow = (w + 2 * padding[1] - kw) // stride[1] + 1
    return (int(cout), int(oh), int(ow))


# ----------------------------------------------------------------------------- reading
def _read(source) -> tuple[Any, str | None, str]:
    import nir

    if isinstance(source, nir.NIRGraph):
        return source, None, "<NIRGraph>"
    path = Path(source)
    if not path.exists():
        raise NirImportError(f"NIR file '{path}' does not exist")
    if not path.is_file():
        raise NirImportError(f"NIR path '{path}' is not a file")
    try:
        import h5py

        with h5py.File(path, "r") as f:
            version = f["version"][()] if "version" in f else None
            if isinstance(version, bytes):
                version = version.decode()
            if "node" not in f:
                raise NirImportError(f"'{path}' is an HDF5 file but not a NIR graph (no 'node' group)")
    except NirImportError:
        raise
    except Exception as exc:  # OSError for truncated / non-HDF5 files
        raise NirImportError(f"'{path}' is not a readable NIR (HDF5) file: {exc}") from None
    try:
        graph = nir.read(path)
    except Exception:
        try:
            graph = nir.read(path, type_check=False)
        except Exception as exc:
            raise NirImportError(f"'{path}': NIR graph cannot be read ({type(exc).__name__}: {exc})") from None
    return graph, (str(version) if version is not None else None), str(path)


def _version_tuple(v: str | None):
    if not v:
        return None
    parts = []
    for p in v.split(".")[:3]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def _toposort(names: list[str], edges: list[tuple[str, str]]) -> list[str]:
    indeg = {n: 0 for n in names}
    succ: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    order = []
    ready = sorted(n for n in names if indeg[n] == 0)
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if len(order) != len(names):
        cyc = sorted(n for n in names if indeg[n] > 0)
        raise NirImportError(f"graph has a recurrent cycle through nodes {', '.join(repr(c) for c in cyc)}; "
                             "only feed-forward graphs are supported")
    return order


# ----------------------------------------------------------------------------- main entry
def import_nir(source, *, reset_mode: str | None = None, dt: float | str | None = "auto",
               comparator: str | None = None, v_init_frac: float | None = None,
               name: str | None = None) -> FloatNetwork:
    """Import a NIR file or graph; see the module docstring for the rules.

    ``comparator=None`` takes the writer's comparator (``>=`` for unknown writers)."""
    if reset_mode not in (None, "subtract", "to_value"):
        raise NirImportError(f"reset_mode must be 'subtract' or 'to_value', not {reset_mode!r}")
    if comparator not in (None, ">=", ">"):
        raise NirImportError(f"comparator must be '>=' or '>', not {comparator!r}")
    graph, version, where = _read(source)
    nodes = dict(graph.nodes)
    if not nodes:
        raise NirImportError(f"{where}: the graph is empty")
    for n, node in nodes.items():
        t = type(node).__name__
        if t == "Threshold" and _is_psn_node(node):
            _psn_mode_ok(n, node, where)
            continue
        if t in REJECTED:
            raise NirImportError(f"{where}: node '{n}' of type {t} is not supported ({REJECTED[t]})")
        if t not in NEURON_TYPES + LINEAR_TYPES + ("Input", "Output"):
            raise NirImportError(f"{where}: node '{n}' of type {t} is not supported")
    edges = [(str(a), str(b)) for a, b in graph.edges]
    for a, b in edges:
        for e in (a, b):
            if e not in nodes:
                raise NirImportError(f"{where}: edge ({a!r}, {b!r}) names unknown node '{e}'")
    order = _toposort(list(nodes), edges)
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        preds[b].append(a)
    inputs = [n for n in nodes if type(nodes[n]).__name__ == "Input"]
    outputs = [n for n in nodes if type(nodes[n]).__name__ == "Output"]
    if len(inputs) != 1 or not outputs:
        raise NirImportError(f"{where}: need exactly one Input and at least one Output node, found {len(inputs)} "
                             f"and {len(outputs)}")
    vt = _version_tuple(version)
    legacy_subtract = vt is not None and vt < (1, 0, 6)
    raw_shape = _input_shape(nodes, inputs[0], edges, where)
    gmd = getattr(graph, "metadata", None) or {}
    input_shape, dropped = _drop_batch(raw_shape, nodes, inputs[0], edges)
    conv = recognise(nodes, vt, gmd, batch=dropped > 0)
    explicit_dt = dt is not None and dt != "auto"
    step = _choose_dt(nodes, dt, where, conv)
    writer_rule = f"{conv.writer} convention"
    comp_rule = ("option" if comparator is not None
                 else writer_rule if conv.comparator else "default")
    comparator = comparator or conv.comparator or ">="
    dt_rule = "option" if explicit_dt else writer_rule if conv.dt else "NIR rule (auto)"

    values: dict[str, _Map | _Current] = {}
    out_layers: dict[str, str] = {}  # Output node -> its integrator layer
    layers: list[FloatLayer] = []
    decisions: dict[str, Any] = {"writer_version": version, "dt": step, "comparator": comparator,
                                 "reset": [], "source": where, "writer": conv.summary(),
                                 "comparator_rule": comp_rule, "dt_rule": dt_rule, "dynamics": []}
    if dropped:
        what = "batch" if all(x == 1 for x in raw_shape[:dropped]) else "batch and time"
        decisions["normalise"] = [f"Input shape {raw_shape}: dropped the leading {dropped} "
                                  f"dimension(s) ({what}), using {input_shape}"]
    imp = _Ctx(conv=conv, explicit_dt=explicit_dt, reset_mode=reset_mode,
               legacy_subtract=legacy_subtract)
    for n in order:
        node = nodes[n]
        t = type(node).__name__
        ins = [values[p] for p in preds[n]]
        if t == "Input":
            values[n] = _Map(source="input", shape=input_shape)
            continue
        if not ins:
            raise NirImportError(f"{where}: node '{n}' ({t}) has no input edge")
        if t == "Output":
            before = len(layers)
            values[n] = _finish_output(n, ins, layers, where)
            out_layers[n] = layers[-1].name if len(layers) > before else values[n].source
            continue
        if len(ins) > 1:
            val = _sum_currents(n, t, ins, where)
        else:
            val = ins[0]
        if t == "Threshold":  # a sliding PSN (checked above)
            layer = _psn_layer(n, node, val, comparator, where)
            layers.append(layer)
            values[n] = _Map(source=layer.name, shape=layer.shape)
        elif t in NEURON_TYPES:
            layer = _neuron_layer(n, node, t, val, step, imp, comparator, v_init_frac, where,
                                  decisions)
            layers.append(layer)
            values[n] = _Map(source=layer.name, shape=layer.shape)
        else:
            values[n] = _linear(n, node, t, val, where, decisions)
    # the primary output (AT unit, classification) is the Output node named "output", else the last one
    primary = "output" if "output" in out_layers else [n for n in order if n in out_layers][-1]
    out_name = out_layers[primary]
    if len(out_layers) > 1:
        decisions["outputs"] = {"primary": out_name, "rule": "Output node named 'output'" if primary == "output"
                                else "last Output node in topological order",
                                "heads": sorted(v for k, v in out_layers.items() if k != primary)}
        for l in layers:
            if l.name in decisions["outputs"]["heads"]:
                l.extra["head"] = True
    consumed = {s.source for l in layers for s in l.synapses}
    for l in layers:
        if l.neuron == "integrator" and l.name in consumed:
            raise NirImportError(f"{where}: integrator layer '{l.name}' feeds other layers; an integrator "
                                 "(I/LI or readout) must be terminal")
    if "input_max" in gmd:
        decisions["input_max"] = float(np.asarray(gmd["input_max"]))
    encoding = _text(gmd.get("input_encoding", "direct"))
    if encoding not in ("direct", "spikes", "sequence"):
        raise NirImportError(f"{where}: graph metadata input_encoding {encoding!r} is not 'direct', 'spikes' or "
                             "'sequence'")
    net = FloatNetwork(name=name or (Path(where).stem if where != "<NIRGraph>" else "nir_graph"),
                       input_shape=input_shape, layers=layers, output=out_name, decisions=decisions,
                       input_encoding=encoding)
    from atsnn.compiler.ilif import finish_import
    return finish_import(net, where)


def _choose_dt(nodes, dt, where, conv: Convention | None = None) -> float:
    """dt from the option, else the writer's (``conv.dt``), else the NIR rule: ``r*dt = 1``
    (IF, I) and ``dt*r/tau = 1`` (LIF, LI) for every node, the IF value when both exist."""
    if dt is not None and dt != "auto":
        try:
            d = float(dt)
        except (TypeError, ValueError):
            raise NirImportError(f"dt must be 'auto' or a positive number, not {dt!r}") from None
        if not (d > 0 and math.isfinite(d)):
            raise NirImportError(f"dt must be a positive number, not {dt!r}")
        return d
    if conv is not None and conv.dt is not None:
        return float(conv.dt)
    ifs, lifs = [], []
    for n, node in nodes.items():
        t = type(node).__name__
        if t in ("IF", "I"):
            ifs.append((n, 1.0 / _arr(node.r).ravel()))
        elif t in ("LIF", "LI"):
            lifs.append((n, _arr(node.tau).ravel() / _arr(node.r).ravel()))
    for cands in (ifs, lifs):
        if not cands:
            continue
        vals = np.concatenate([c for _, c in cands])
        if not np.all(np.isfinite(vals)) or np.any(vals <= 0):
            bad = next(n for n, c in cands if not np.all(np.isfinite(c)) or np.any(c <= 0))
            raise NirImportError(f"{where}: node '{bad}': cannot choose dt automatically (r or "
                                 "tau not positive); pass --dt")
        if not np.allclose(vals, vals[0], rtol=1e-5, atol=0):
            names = ", ".join(f"'{n}'" for n, _ in cands)
            rule = "r*dt = 1" if cands is ifs else "dt*r/tau = 1"
            raise NirImportError(f"{where}: no single dt gives {rule} for nodes {names}; pass "
                                 "--dt (the writer's time step in seconds)")
        return float(vals[0])
    return 1.0


def _drop_batch(shape: tuple[int, ...], nodes, inp, edges) -> tuple[tuple[int, ...], int]:
    """Drop leading size-1 dimensions an exporter wrote for the batch (Norse, Rockpool): down to
    (C, H, W) before a Conv2d / pooling node, down to what an Affine / Linear consumes."""
    consumers = [nodes[b] for a, b in edges if a == inp]
    want = None
    for c in consumers:
        t = type(c).__name__
        if t in ("Conv2d", "SumPool2d", "AvgPool2d"):
            want = 3
        elif t in ("Affine", "Linear") and want is None:
            fan_in = int(_arr(c.weight).shape[1]) if _arr(c.weight).ndim == 2 else None
            k = 0
            while (fan_in is not None and len(shape) - k > 1 and shape[k] == 1
                   and int(np.prod(shape[k:])) == fan_in):
                k += 1
            if k:
                return tuple(shape[k:]), k
            # Rockpool: (1, T, n) sample data -> the last axis is the input
            if len(shape) >= 2 and shape[0] == 1 and fan_in is not None and shape[-1] == fan_in:
                return (int(shape[-1]),), len(shape) - 1
    if want is not None and len(shape) > want and all(x == 1 for x in shape[:len(shape) - want]):
        return tuple(shape[len(shape) - want:]), len(shape) - want
    return shape, 0


def _input_shape(nodes, inp, edges, where) -> tuple[int, ...]:
    node = nodes[inp]
    shape = None
    it = getattr(node, "input_type", None) or {}
    for v in it.values():
        if v is not None and np.size(v) > 0:
            shape = tuple(int(x) for x in np.asarray(v).ravel())
    if shape is None:  # infer from the first consumer
        for a, b in edges:
            if a == inp:
                c = nodes[b]
                t = type(c).__name__
                if t == "Conv2d" and getattr(c, "input_shape", None) is not None:
                    w = _arr(c.weight)
                    cin = w.shape[1] if not (getattr(c, "metadata", {}) or {}).get("transposed") else w.shape[0]
                    shape = (int(cin),) + tuple(int(x) for x in np.asarray(c.input_shape).ravel())
                elif t in ("Affine", "Linear"):
                    shape = (int(_arr(c.weight).shape[1]),)
                if shape is None:  # the consumer's own input_type (graphs after nir's infer_types)
                    for v in (getattr(c, "input_type", None) or {}).values():
                        if v is not None and np.size(v) > 0:
                            shape = tuple(int(x) for x in np.asarray(v).ravel())
    if shape is None:
        raise NirImportError(f"{where}: cannot determine the shape of Input node '{inp}'; give it an input_type")
    return shape


def _sum_currents(n, t, ins, where) -> _Current:
    if not all(isinstance(v, _Current) for v in ins):
        raise NirImportError(f"{where}: node '{n}' ({t}) has several inputs; only synaptic currents (outputs of "
                             "Affine/Linear/Conv2d) can be added")
    shape = ins[0].shape
    for v in ins[1:]:
        if v.shape != shape:
            raise NirImportError(f"{where}: node '{n}': added inputs have shapes {shape} and {v.shape}")
    syn = [s for v in ins for s in v.synapses]
    bias = sum((v.bias for v in ins if v.bias is not None), np.zeros(shape[0]))
    return _Current(shape=shape, synapses=syn, bias=bias)


def _need_map(n, t, val, where) -> _Map:
    if not isinstance(val, _Map):
        raise NirImportError(f"{where}: node '{n}' ({t}) follows another weighted node without a neuron in "
                             "between; the PE needs a neuron layer between weighted layers")
    return val


def _fold_note(decisions, text: str) -> None:
    decisions.setdefault("normalise", []).append(text)


def _fold_pool(n, node, t, val: _Current, where, decisions) -> _Current:
    """Pooling of a convolution's current is linear: one convolution with a wider kernel and the
    product of the strides, ``W'[:, :, a*s+u, b*s+v] += f * W[:, :, u, v]`` (``f = 1/(kh*kw)``
    for AvgPool2d, 1 for SumPool2d)."""
    k = _pair(node.kernel_size, "kernel_size", n)
    st = _pair(node.stride, "stride", n)
    p = _pair(node.padding, "padding", n)
    if len(val.shape) != 3 or p != (0, 0) or any(syn.op != "conv2d" for syn in val.synapses):
        raise NirImportError(f"{where}: node '{n}' ({t}) pools the current of a weighted node "
                             "without a neuron in between; atsnn folds that only for Conv2d "
                             f"currents and pooling padding 0 (got shape {val.shape}, padding "
                             f"{p})")
    f = 1.0 / (k[0] * k[1]) if t == "AvgPool2d" else 1.0
    want = _pool_out(val.shape, k, st, p, n)
    for syn in val.synapses:
        w = syn.weight
        s0, s1 = syn.stride
        kh, kw = w.shape[2] + (k[0] - 1) * s0, w.shape[3] + (k[1] - 1) * s1
        w2 = np.zeros(w.shape[:2] + (kh, kw))
        for a in range(k[0]):
            for b in range(k[1]):
                w2[:, :, a * s0:a * s0 + w.shape[2], b * s1:b * s1 + w.shape[3]] += f * w
        syn.weight = w2
        syn.stride = (s0 * st[0], s1 * st[1])
        got = conv_out_shape(syn.input_shape, w2.shape, syn.stride, syn.padding)
        if got != want:
            raise NirImportError(f"{where}: node '{n}' ({t}): folding into the convolution gives "
                                 f"{got}, not the pooled shape {want}")
    val.bias = val.bias * (f * k[0] * k[1])
    _fold_note(decisions, f"{t} '{n}' folded into the preceding convolution (kernel "
                          f"{tuple(w2.shape[2:])}, stride {val.synapses[0].stride})")
    return _Current(shape=want, synapses=val.synapses, bias=val.bias)


def _fold_dense(n, node, t, val: _Current, where, decisions) -> _Current:
    """Affine / Linear after Affine / Linear without a neuron: one synapse ``W2 @ W1``, bias
    ``W2 b1 + b2``."""
    w = _check_finite(n, "weight", node.weight)
    if len(val.shape) != 1 or any(syn.op != "dense" for syn in val.synapses):
        raise NirImportError(f"{where}: node '{n}' ({t}) follows a weighted node of shape "
                             f"{val.shape} without a neuron in between; atsnn folds only dense "
                             "chains (Affine/Linear -> Affine/Linear), pooling after Conv2d and "
                             "Scale")
    if w.ndim != 2 or w.shape[1] != val.shape[0]:
        raise NirImportError(f"{where}: edge into node '{n}' ({t}): source has shape {val.shape} "
                             f"but the weight expects {w.shape[1] if w.ndim == 2 else w.shape} "
                             "inputs")
    for syn in val.synapses:
        syn.weight = w @ syn.weight
    bias = w @ val.bias
    if t == "Affine":
        bias = bias + _check_finite(n, "bias", node.bias).ravel()
    _fold_note(decisions, f"{t} '{n}' folded into the preceding dense synapse "
                          f"({w.shape[0]} outputs)")
    return _Current(shape=(int(w.shape[0]),), synapses=val.synapses, bias=bias)


def _linear(n, node, t, val, where, decisions=None):
    md = getattr(node, "metadata", {}) or {}
    decisions = {} if decisions is None else decisions
    if isinstance(val, _Current) and t in ("SumPool2d", "AvgPool2d"):
        return _fold_pool(n, node, t, val, where, decisions)
    if isinstance(val, _Current) and t in ("Affine", "Linear"):
        return _fold_dense(n, node, t, val, where, decisions)
    if isinstance(val, _Current) and t == "Flatten" and len(val.shape) == 1:
        return val
    if t == "Scale":
        s = _check_finite(n, "scale", node.scale)
        if isinstance(val, _Current):
            c = val.shape[0]
            sc = _per_channel(n, "scale", s, val.shape) if s.size > 1 else np.full(c, float(s.ravel()[0]))
            for syn in val.synapses:
                syn.weight = syn.weight * (sc.reshape((-1,) + (1,) * (syn.weight.ndim - 1))
                                           if syn.op != "conv_transpose2d"
                                           else sc.reshape((1, -1) + (1,) * (syn.weight.ndim - 2)))
            val.bias = val.bias * sc
            return val
        m = _need_map(n, t, val, where)
        pre = s if m.prescale is None else m.prescale * s
        return _Map(source=m.source, shape=m.shape, pool=m.pool, flatten=m.flatten, prescale=pre)
    m = _need_map(n, t, val, where)
    if t == "Flatten":
        start = int(np.asarray(getattr(node, "start_dim", 0)))
        if start not in (0,) and len(m.shape) > 1:
            raise NirImportError(f"{where}: node '{n}' Flatten with start_dim={start} is not supported")
        return _Map(source=m.source, shape=(int(np.prod(m.shape)),), pool=m.pool, flatten=True, prescale=m.prescale)
    if t in ("SumPool2d", "AvgPool2d"):
        if m.pool is not None or m.flatten or len(m.shape) != 3:
            raise NirImportError(f"{where}: node '{n}' ({t}) must act on a (C, H, W) spike map, got {m.shape}")
        k = _pair(node.kernel_size, "kernel_size", n)
        s = _pair(node.stride, "stride", n)
        p = _pair(node.padding, "padding", n)
        shape = _pool_out(m.shape, k, s, p, n)
        pre = m.prescale
        if t == "AvgPool2d":
            f = 1.0 / (k[0] * k[1])
            pre = f if pre is None else pre * f
        return _Map(source=m.source, shape=shape, pool=Pool(kernel=k, stride=s, padding=p), prescale=pre)
    # weighted ops
    w = _check_finite(n, "weight", node.weight)
    if w.size * 1 > MAX_LAYER_BYTES:
        raise NirImportError(f"{where}: node '{n}' has {w.size} weights, more than the {MAX_LAYER_BYTES} limit")
    if m.prescale is not None:
        pre = np.asarray(m.prescale, dtype=np.float64)
        if pre.size != 1:
            raise NirImportError(f"{where}: node '{n}': a per-element Scale before a weighted node is not supported")
        w = w * float(pre.ravel()[0])
    if t in ("Affine", "Linear"):
        if w.ndim != 2:
            raise NirImportError(f"{where}: node '{n}' ({t}) weight must be 2-D, got shape {w.shape}")
        fan_in = int(np.prod(m.shape))
        if w.shape[1] != fan_in:
            raise NirImportError(f"{where}: edge into node '{n}' ({t}): source has shape {m.shape} "
                                 f"({fan_in} values) but the weight expects {w.shape[1]} inputs")
        bias = _check_finite(n, "bias", node.bias) if t == "Affine" else np.zeros(w.shape[0])
        syn = FloatSynapse(source=m.source, op="dense", weight=w, input_shape=(fan_in,), pool=m.pool,
                           flatten=len(m.shape) > 1 or m.flatten)
        return _Current(shape=(int(w.shape[0]),), synapses=[syn], bias=bias.ravel().copy())
    # Conv2d
    if len(m.shape) != 3 or m.flatten:
        raise NirImportError(f"{where}: edge into node '{n}' (Conv2d): source shape {m.shape} is not (C, H, W)")
    transposed = bool(md.get("transposed", False))
    if w.ndim != 4:
        raise NirImportError(f"{where}: node '{n}' (Conv2d) weight must be 4-D, got shape {w.shape}")
    groups = int(np.asarray(getattr(node, "groups", 1)))
    dil = _pair(getattr(node, "dilation", 1), "dilation", n)
    if groups != 1:
        raise NirImportError(f"{where}: node '{n}' (Conv2d) groups={groups} is not supported (groups must be 1)")
    if dil != (1, 1):
        raise NirImportError(f"{where}: node '{n}' (Conv2d) dilation={dil} is not supported (must be 1)")
    stride = _pair(node.stride, "stride", n)
    pad_raw = node.padding
    kh, kw = w.shape[2], w.shape[3]
    if isinstance(pad_raw, str):
        if pad_raw == "valid":
            padding = (0, 0)
        elif pad_raw == "same":
            padding = ((kh - 1) // 2, (kw - 1) // 2)
        else:
            raise NirImportError(f"{where}: node '{n}' (Conv2d) padding {pad_raw!r} is not supported")
    else:
        padding = _pair(pad_raw, "padding", n)
    cin = w.shape[0] if transposed else w.shape[1]
    if cin != m.shape[0]:
        raise NirImportError(f"{where}: edge into node '{n}' (Conv2d): source has shape {m.shape} but the weight "
                             f"{w.shape} expects {cin} input channels")
    ish = getattr(node, "input_shape", None)
    if ish is not None and np.size(ish) == 2 and tuple(int(x) for x in np.asarray(ish).ravel()) != m.shape[1:]:
        raise NirImportError(f"{where}: edge into node '{n}' (Conv2d): source has shape {m.shape} but the node "
                             f"declares input_shape {tuple(int(x) for x in np.asarray(ish).ravel())}")
    op_pad = _pair(md.get("output_padding", 0), "output_padding", n) if transposed else (0, 0)
    out = conv_out_shape(m.shape, w.shape, stride, padding, transposed=transposed, output_padding=op_pad)
    if out[1] < 1 or out[2] < 1:
        raise NirImportError(f"{where}: node '{n}' (Conv2d) on input {m.shape} gives an empty output {out}")
    if int(np.prod(out)) * 8 > MAX_LAYER_BYTES:
        raise NirImportError(f"{where}: node '{n}' (Conv2d) output {out} has {int(np.prod(out))} neurons; "
                             f"more than the {MAX_LAYER_BYTES} B limit")
    bias = getattr(node, "bias", None)
    bias = np.zeros(out[0]) if bias is None or np.size(bias) == 0 else _check_finite(n, "bias", bias).ravel()
    if bias.size == 1 and out[0] != 1:
        bias = np.full(out[0], float(bias[0]))
    syn = FloatSynapse(source=m.source, op="conv_transpose2d" if transposed else "conv2d", weight=w,
                       input_shape=m.shape, stride=stride, padding=padding, output_padding=op_pad, pool=m.pool)
    return _Current(shape=out, synapses=[syn], bias=bias.copy())


def _neuron_layer(n, node, t, val, step, imp: _Ctx, comparator, v_init_frac, where, decisions):
    if not isinstance(val, _Current):
        raise NirImportError(f"{where}: node '{n}' ({t}) must be fed by a weighted node (Affine/Linear/Conv2d)")
    shape = val.shape
    md = dict(getattr(node, "metadata", {}) or {})
    conv = imp.conv
    r = _per_channel(n, "r", node.r, shape)
    dt_opt = "--dt" if imp.explicit_dt else "--dt (the writer's time step in seconds)"
    bias_extra = np.zeros(shape[0])
    if t in ("LIF", "LI"):
        tau = _per_channel(n, "tau", node.tau, shape)
        if np.any(tau <= 0):
            raise NirImportError(f"{where}: node '{n}' ({t}): parameter tau = {tau.min():g} must "
                                 "be positive")
        v_leak = _per_channel(n, "v_leak", getattr(node, "v_leak", 0.0), shape)
        beta_c, gain, rule = dynamics(conv, imp.explicit_dt, n, t, r, tau, step, where)
        if not np.allclose(beta_c, beta_c[0]):
            raise NirImportError(f"{where}: node '{n}' ({t}): parameter tau differs between "
                                 f"channels ({tau.min():g} to {tau.max():g}); the PE has one leak "
                                 "per layer")
        beta = float(beta_c[0])
        if not (0.0 < beta <= 1.0):
            d = rule.rsplit("dt = ", 1)[-1] if "dt = " in rule else f"{step:g}"
            raise NirImportError(f"{where}: node '{n}' ({t}): parameter tau = {float(tau[0]):g} "
                                 f"with r = {float(r[0]):g} gives leak factor {beta:g} (needs 0 < "
                                 f"beta <= 1) at the assumed dt = {d} (writer {conv.writer}, dt "
                                 f"from {decisions['dt_rule']}); pass {dt_opt}")
        # the resting potential v_leak pulls the membrane: a current (1 - beta) * v_leak per step
        bias_extra = (1.0 - beta) * v_leak
    else:
        beta_c, gain, rule = dynamics(conv, imp.explicit_dt, n, t, r, None, step, where)
        beta = 1.0
    decisions["dynamics"].append({"layer": n, "beta": beta, "gain": float(np.mean(gain)),
                                  "rule": rule})
    for syn in val.synapses:
        if syn.op == "conv_transpose2d":
            syn.weight = syn.weight * gain.reshape(1, -1, 1, 1)
        else:
            syn.weight = syn.weight * gain.reshape((-1,) + (1,) * (syn.weight.ndim - 1))
    bias = val.bias * gain + bias_extra
    neurons = int(np.prod(shape))
    if neurons * 8 > MAX_LAYER_BYTES:
        raise NirImportError(f"{where}: node '{n}' has {neurons} neurons, more than the size limit")
    if t in ("I", "LI"):
        return FloatLayer(name=n, neuron="integrator", shape=shape, synapses=val.synapses, bias=bias,
                          threshold=np.ones(shape[0]), v_init=np.zeros(shape[0]), beta=beta, extra={"nir_type": t})
    thr = _per_channel(n, "v_threshold", node.v_threshold, shape)
    if np.any(thr <= 0):
        raise NirImportError(f"{where}: node '{n}' ({t}): threshold must be positive, got min {thr.min():g}")
    v_reset = getattr(node, "v_reset", None)
    v_reset = np.zeros(shape[0]) if v_reset is None else _per_channel(n, "v_reset", v_reset, shape)
    delayed = False
    if imp.reset_mode is not None:
        mode, rule = imp.reset_mode, "option"
    elif "reset_mode" in md:
        mode = str(md["reset_mode"].decode() if isinstance(md["reset_mode"], bytes) else md["reset_mode"])
        rule = "metadata"
        if mode in ("zero", "to_v_reset", "reset"):
            mode = "to_value"
        if mode not in ("subtract", "to_value"):
            raise NirImportError(f"{where}: node '{n}': metadata reset_mode {mode!r} is not 'subtract'/'to_value'")
    elif conv.reset is not None:
        mode, rule = conv.reset, f"{conv.writer} convention: {conv.reset_why}"
        delayed = conv.delayed_subtract and mode == "subtract"
    elif imp.legacy_subtract:
        mode, rule = "subtract", "writer version < 1.0.6"
    else:  # the NIR standard since 1.0.6: v <- v_reset
        mode, rule = "to_value", "default for IF" if t == "IF" else "default for LIF"
    if mode == "to_value" and not np.allclose(v_reset, v_reset[0]):
        raise NirImportError(f"{where}: node '{n}': v_reset differs between channels; one value per layer")
    decisions["reset"].append({"layer": n, "reset_mode": mode, "rule": rule})
    if "v_init" in md:
        v_init = _per_channel(n, "v_init", md["v_init"], shape)
        vrule = "metadata v_init"
    elif "v_init_frac" in md:
        v_init = float(np.asarray(md["v_init_frac"])) * thr
        vrule = "metadata v_init_frac"
    elif v_init_frac is not None:
        v_init = float(v_init_frac) * thr
        vrule = "option v_init_frac"
    else:
        v_init = np.zeros(shape[0])
        vrule = "default 0"
    if delayed and beta < 1.0:  # snnTorch subtracts the threshold one step late, outside the leak
        thr, bias, v_init = snntorch_delayed_subtract(thr, beta, bias, v_init)
        vrule += ("; plus the offset thr*(1-beta)/beta of snnTorch's late reset "
                  "(threshold thr/beta)")
    decisions.setdefault("v_init", []).append({"layer": n, "rule": vrule})
    comp = md.get("comparator", comparator)
    comp = comp.decode() if isinstance(comp, bytes) else str(comp)
    from atsnn.compiler.ilif import extra_from_nir  # iLIF convention: IF node with metadata neuron_model = "ilif"
    return FloatLayer(name=n, neuron="lif" if t == "LIF" else "if", shape=shape, synapses=val.synapses, bias=bias,
                      threshold=thr, v_init=v_init, beta=beta, reset=mode, v_reset=float(v_reset[0]),
                      comparator=comp if comp in (">=", ">") else comparator,
                      extra={"nir_type": t, **extra_from_nir(md, n, where)})


def _text(v) -> str:
    """A metadata string as read back by nir/h5py (str, bytes or a 0-d array)."""
    v = v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v
    return v.decode() if isinstance(v, bytes) else str(v)


def _is_psn_node(node) -> bool:
    md = getattr(node, "metadata", None) or {}
    return "neuron_model" in md and _text(md["neuron_model"]) == "psn"


def _psn_mode_ok(n, node, where) -> None:
    """Refuse a full / masked / unknown PSN mode naming the node (seed 002 eq. 9-13 cannot run step by step)."""
    from atsnn.psn import SLIDING, unsupported_mode_message
    md = node.metadata
    mode = _text(md.get("psn_mode", SLIDING))
    if mode != SLIDING:
        raise NirImportError(unsupported_mode_message(f"{where}: node '{n}'", mode))


def _psn_layer(n, node, val, comparator, where) -> FloatLayer:
    """A ``Threshold`` node with ``neuron_model = "psn"`` metadata -> a sliding-PSN FloatLayer."""
    from atsnn.psn import EXTRA_KEY, KIND, SLIDING
    if not isinstance(val, _Current):
        raise NirImportError(f"{where}: PSN node '{n}' (Threshold) must be fed by a weighted node "
                             "(Affine/Linear/Conv2d)")
    md = node.metadata
    if "psn_taps" not in md:
        raise NirImportError(f"{where}: PSN node '{n}' has no metadata psn_taps (the k tap weights, W_(k-1) last)")
    taps = _check_finite(n, "psn_taps", md["psn_taps"]).ravel()
    if taps.size < 1:
        raise NirImportError(f"{where}: PSN node '{n}': psn_taps is empty; a sliding PSN needs k >= 1 taps")
    shape = val.shape
    thr = _per_channel(n, "threshold", node.threshold, shape)
    if np.any(thr <= 0):
        raise NirImportError(f"{where}: PSN node '{n}': threshold must be positive, got min {thr.min():g}")
    comp = _text(md.get("comparator", comparator))
    return FloatLayer(name=n, neuron=KIND, shape=shape, synapses=val.synapses, bias=val.bias, threshold=thr,
                      v_init=np.zeros(shape[0]), comparator=comp if comp in (">=", ">") else comparator,
                      extra={"nir_type": "Threshold",
                             EXTRA_KEY: {"mode": SLIDING, "k": int(taps.size), "taps": [float(q) for q in taps]}})


def _finish_output(n, ins, layers, where):
    if len(ins) > 1:
        val = _sum_currents(n, "Output", ins, where)
    else:
        val = ins[0]
    if isinstance(val, _Current):
        layers.append(FloatLayer(name=n if n not in [l.name for l in layers] else f"{n}_readout", neuron="integrator",
                                 shape=val.shape, synapses=val.synapses, bias=val.bias,
                                 threshold=np.ones(val.shape[0]), v_init=np.zeros(val.shape[0]),
                                 extra={"readout": "terminal weighted node"}))
        return val
    m = val
    if m.source == "input":
        raise NirImportError(f"{where}: Output node '{n}' is fed directly by the input; the graph has no layer")
    src = next(l for l in layers if l.name == m.source)
    if src.neuron == "integrator" and m.pool is None and not m.flatten:
        return val
    c = int(np.prod(m.shape))
    if c > 4096:
        raise NirImportError(f"{where}: Output node '{n}' reads {c} spiking neurons; a spike-count readout supports "
                             "at most 4096")
    syn = FloatSynapse(source=m.source, op="dense", weight=np.eye(c), input_shape=(c,), pool=m.pool,
                       flatten=len(m.shape) > 1 or m.flatten)
    layers.append(FloatLayer(name=f"{n}_count", neuron="integrator", shape=(c,), synapses=[syn], bias=np.zeros(c),
                             threshold=np.ones(c), v_init=np.zeros(c),
                             extra={"readout": f"spike count of layer '{m.source}'"}))
    return val
