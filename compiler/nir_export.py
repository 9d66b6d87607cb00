"""Write a :class:`FloatNetwork` as NIR in atsnn's convention, so it round-trips through the importer.

Each layer becomes its weighted node(s) (``Affine``/``Conv2d``, pools as
``SumPool2d``, flatten as ``Flatten``) feeding an ``IF`` or ``LIF`` node with
``r = 1`` (dt = 1) and metadata ``reset_mode``, ``v_init`` (per channel) and
``comparator``; the output integrator is a terminal weighted node before
``Output`` (no neuron), as converted networks are usually written. Further
output heads (integrators other than ``net.output``) feed their own
``Output`` nodes named ``output_<layer>``; the primary one is ``output``. A
transposed convolution is a ``Conv2d`` with metadata ``transposed = True``
(see :mod:`atsnn.compiler.nir_import`). A sliding-PSN layer is a ``Threshold``
node (``threshold = V_th`` per neuron) behind its weighted node, with
metadata ``neuron_model = "psn"``, ``psn_mode = "sliding"``, ``psn_taps``
(the k float taps, ``W_{k-1}`` last) and ``comparator`` (docs/hardware.md
sec. 11); a network with sequence inputs writes graph metadata
``input_encoding = "sequence"``. The file is written to a temporary name
and renamed, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from atsnn.compiler.ilif import graph_metadata as ilif_graph_metadata
from atsnn.compiler.ilif import nir_metadata as ilif_nir_metadata
from atsnn.compiler.ir import FloatNetwork


def _full(values: np.ndarray, shape) -> np.ndarray:
    """Per-channel values expanded to the layer shape (NIR wants parameters shaped like the layer)."""
    per = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return np.repeat(np.asarray(values, dtype=np.float32), per).reshape(shape)


def _map_shape(shape, pool) -> tuple[int, ...]:
    """Shape of a source map after its optional sum-pool (what a Flatten node receives)."""
    if pool is None:
        return tuple(shape)
    c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw) = pool.kernel, pool.stride, pool.padding
    return (c, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)


def _psn_node(nir, layer):
    """The ``Threshold`` node of a sliding-PSN layer (docs/hardware.md sec. 11)."""
    from atsnn.psn import KIND, SLIDING, layer_params
    p = layer_params(layer)
    if p is None or p.get("mode", SLIDING) != SLIDING:
        from atsnn.errors import ConversionError
        from atsnn.psn import unsupported_mode_message
        if p is None:
            raise ConversionError(f"layer '{layer.name}': PSN layer without extra['psn'] parameters")
        raise ConversionError(unsupported_mode_message(f"layer '{layer.name}'", str(p.get("mode"))))
    md = {"neuron_model": KIND, "psn_mode": SLIDING, "psn_taps": np.asarray(p["taps"], dtype=np.float64),
          "comparator": layer.comparator}
    return nir.Threshold(threshold=_full(layer.threshold, layer.shape), metadata=md)


def export_nir(net: FloatNetwork, path: str | Path | None = None):
    import nir

    nodes: dict = {"input": nir.Input(input_type={"input": np.array(net.input_shape)})}
    edges: list[tuple[str, str]] = []
    shapes = {"input": tuple(net.input_shape)}
    out_of = {"input": "input"}  # layer -> node that emits its spikes
    for layer in net.layers:
        targets = []
        for i, syn in enumerate(layer.synapses):
            tag = f"{layer.name}.w{i}"
            src = out_of[syn.source]
            if syn.pool is not None:
                nodes[f"{tag}.pool"] = nir.SumPool2d(kernel_size=np.array(syn.pool.kernel),
                                                    stride=np.array(syn.pool.stride),
                                                    padding=np.array(syn.pool.padding))
                edges.append((src, f"{tag}.pool"))
                src = f"{tag}.pool"
            if syn.flatten:
                nodes[f"{tag}.flat"] = nir.Flatten(input_type={"input": np.array(_map_shape(shapes[syn.source],
                                                                                            syn.pool))},
                                                   start_dim=0, end_dim=-1)
                edges.append((src, f"{tag}.flat"))
                src = f"{tag}.flat"
            bias = np.asarray(layer.bias, dtype=np.float32) if i == 0 else np.zeros(layer.shape[0], np.float32)
            w = np.asarray(syn.weight, dtype=np.float32)
            if syn.op == "dense":
                node = nir.Affine(weight=w, bias=bias)
            else:
                md = {"transposed": True, "output_padding": np.array(syn.output_padding)} \
                    if syn.op == "conv_transpose2d" else {}
                node = nir.Conv2d(input_shape=np.array(syn.input_shape[1:]), weight=w, stride=np.array(syn.stride),
                                  padding=np.array(syn.padding), dilation=np.array([1, 1]), groups=1, bias=bias,
                                  metadata=md)
            nodes[tag] = node
            edges.append((src, tag))
            targets.append(tag)
        if layer.neuron == "integrator":
            out_node = "output" if layer.name == net.output else f"output_{layer.name}"
            if layer.name != net.output:
                nodes[out_node] = nir.Output(output_type={"output": np.array(layer.shape)})
            if layer.beta != 1.0:
                nodes[layer.name] = nir.LI(tau=_full(np.ones(layer.shape[0]) / (1 - layer.beta), layer.shape),
                                           r=_full(np.ones(layer.shape[0]) / (1 - layer.beta), layer.shape),
                                           v_leak=_full(np.zeros(layer.shape[0]), layer.shape))
                for tg in targets:
                    edges.append((tg, layer.name))
                edges.append((layer.name, out_node))
            else:
                for tg in targets:
                    edges.append((tg, out_node))
            shapes[layer.name] = tuple(layer.shape)
            continue
        if layer.neuron == "psn":
            nodes[layer.name] = _psn_node(nir, layer)
            for tg in targets:
                edges.append((tg, layer.name))
            out_of[layer.name] = layer.name
            shapes[layer.name] = tuple(layer.shape)
            continue
        md = {"reset_mode": layer.reset, "v_init": np.asarray(layer.v_init, dtype=np.float64),
              "comparator": layer.comparator}
        md.update(ilif_nir_metadata(layer))  # iLIF: an IF node with neuron_model = "ilif" (atsnn.compiler.ilif)
        thr = _full(layer.threshold, layer.shape)
        vres = _full(np.full(layer.shape[0], layer.v_reset), layer.shape)
        if layer.neuron == "lif":
            tau = 1.0 / (1.0 - layer.beta)
            node = nir.LIF(tau=_full(np.full(layer.shape[0], tau), layer.shape),
                           r=_full(np.full(layer.shape[0], tau), layer.shape),
                           v_leak=_full(np.zeros(layer.shape[0]), layer.shape), v_threshold=thr, v_reset=vres,
                           metadata=md)
        else:
            node = nir.IF(r=_full(np.ones(layer.shape[0]), layer.shape), v_threshold=thr, v_reset=vres, metadata=md)
        nodes[layer.name] = node
        for tg in targets:
            edges.append((tg, layer.name))
        out_of[layer.name] = layer.name
        shapes[layer.name] = tuple(layer.shape)
    out_shape = net.layer(net.output).shape
    nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False,
                         metadata={"producer": "atsnn", "network": net.name,
                                   "input_max": float(net.decisions.get("input_max", 1.0)),
                                   **ilif_graph_metadata(net),
                                   **({"input_encoding": net.input_encoding} if net.input_encoding != "direct"
                                      else {})})
    if path is not None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            nir.write(tmp, graph)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    return graph
