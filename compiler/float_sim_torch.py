"""The float SNN in PyTorch (CPU): the same semantics as :func:`atsnn.compiler.float_sim.run_float`.

Used as the functional-only baseline of ``benchmarks/bench_hwsim.py`` when the optional ``torch``
extra is installed; tests check it against the numpy version. Needs torch (imported lazily).
"""

from __future__ import annotations

import numpy as np

from atsnn.compiler.ir import FloatNetwork


def _torch():
    try:
        import torch
    except ImportError:
        from atsnn.errors import AtsnnError
        raise AtsnnError("the PyTorch float SNN needs the optional extra: pip install 'atsnn[torch]'") from None
    return torch


def run_float_torch(net: FloatNetwork, x: np.ndarray, T: int) -> np.ndarray:
    """Direct encoding for ``T`` timesteps; returns the output membranes (batch, T, C) as float32 numpy."""
    if any(l.neuron == "ilif" for l in net.layers):
        from atsnn.errors import ConversionError
        raise ConversionError(f"network '{net.name}' is iLIF: run it with atsnn.compiler.float_sim.run_float")
    from atsnn.psn import has_psn
    if has_psn(net) or net.input_encoding != "direct":
        from atsnn.errors import ConversionError
        what = (f"has sliding-PSN layer '{next(l.name for l in net.layers if l.neuron == 'psn')}'" if has_psn(net)
                else f"takes {net.input_encoding!r} inputs")
        raise ConversionError(f"network '{net.name}' {what}: the PyTorch float SNN runs direct-encoded IF/LIF "
                              "networks only; run it with atsnn.compiler.float_sim.run_float")
    torch = _torch()
    F = torch.nn.functional
    with torch.inference_mode():
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape((-1,) + tuple(net.input_shape)))
        b = xt.shape[0]
        params = {}
        for l in net.layers:
            per = l.neurons // l.shape[0]
            params[l.name] = dict(
                v=torch.as_tensor(np.repeat(np.asarray(l.v_init, np.float32), per)).repeat(b, 1),
                bias=torch.as_tensor(np.repeat(np.asarray(l.bias, np.float32), per)),
                thr=torch.as_tensor(np.repeat(np.asarray(l.threshold, np.float32), per)),
                w=[torch.as_tensor(np.asarray(s.weight, np.float32)) for s in l.synapses])

        def op(s, w, src):
            if s.pool is not None:
                k, st, pd = s.pool.kernel, s.pool.stride, s.pool.padding
                src = F.avg_pool2d(src, k, st, pd, count_include_pad=True) * float(k[0] * k[1])
            if s.flatten or s.op == "dense":
                return F.linear(src.reshape(src.shape[0], -1), w)
            if s.op == "conv2d":
                return F.conv2d(src, w, stride=s.stride, padding=s.padding)
            return F.conv_transpose2d(src, w, stride=s.stride, padding=s.padding, output_padding=s.output_padding)

        first = {}
        u = torch.zeros((b, T, net.layer(net.output).neurons))
        for t in range(T):
            spikes = {}
            for l in net.layers:
                p = params[l.name]
                acc = torch.zeros((b, l.neurons))
                for i, s in enumerate(l.synapses):
                    if s.source == "input":
                        if (l.name, i) not in first:
                            first[(l.name, i)] = op(s, p["w"][i], xt).reshape(b, -1)
                        acc += first[(l.name, i)]
                    else:
                        src = spikes[s.source].reshape((b,) + tuple(net.layer(s.source).shape))
                        acc += op(s, p["w"][i], src).reshape(b, -1)
                vv = l.beta * p["v"] + acc + p["bias"]
                if l.neuron == "integrator":
                    p["v"] = vv
                    continue
                z = vv >= p["thr"] if l.comparator == ">=" else vv > p["thr"]
                p["v"] = torch.where(z, vv - p["thr"] if l.reset == "subtract" else
                                     torch.full_like(vv, float(l.v_reset)), vv)
                spikes[l.name] = z.to(torch.float32)
            u[:, t] = params[net.output]["v"]
        return u.numpy()
