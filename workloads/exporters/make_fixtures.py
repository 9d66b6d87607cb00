"""Build small SNNs in each exporter framework, export them to NIR with the framework's own export
function and store the NIR file plus the framework's own predictions (tests/fixtures/exporters/).

Not part of the package and not run by the tests: it needs the exporters (the ``exporters`` extra
of pyproject.toml; Sinabs pins ``nir<=1.0.4`` and goes into an environment of its own):

    ENV/bin/python workloads/exporters/make_fixtures.py --only \
        snntorch,spikingjelly,norse,rockpool,refused
    SINABS_ENV/bin/python workloads/exporters/make_fixtures.py --only sinabs

Every network sees the 8x8 digits (pixel / 16, ``atsnn.workloads.digits.load_split``) as input current
on every one of T = 16 steps. The weights come from a small ReLU ANN trained here in plain
torch (seeded, a few seconds); each framework's network gets those weights and per-layer
thresholds chosen from the ANN's activations (a scale factor per network is picked on training
images so that the outputs are not degenerate). Each fixture ``NAME.nir`` has a ``NAME.npz``
with ``pred`` (the framework's class per test image: argmax of the output spike count over T,
or of the output membrane after step T for a leaky-integrator readout, lowest index on ties),
``scores``, ``T``, ``labels``, ``x_sum`` (checksum of the inputs), ``framework`` / ``version`` /
``nir_version`` and ``note`` (the network and any export quirk worked around). The test split
has 540 images; ``tests/test_exporters.py`` compiles every file with default options and
compares atsnn's fixed-T predictions with ``pred``. See docs/exporters.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "tests" / "fixtures" / "exporters"
T = 16
SEED = 0
FRAMEWORKS = ("snntorch", "spikingjelly", "norse", "sinabs", "rockpool", "refused")


# ----------------------------------------------------------------------------- data and the ANN
def data():
    from atsnn.workloads.digits import load_split
    xtr, ytr, xte, yte = load_split()
    f32 = torch.float32
    return (torch.tensor(xtr, dtype=f32), torch.tensor(ytr), torch.tensor(xte, dtype=f32),
            torch.tensor(yte))


def ann(kind: str) -> nn.Sequential:
    """``mlp``: 64-48-10; ``cnn_pool_first``: conv -> avgpool -> ReLU (snnTorch tutorials);
    ``cnn``: conv -> ReLU -> avgpool."""
    torch.manual_seed(SEED)
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
    c1, c2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
    if kind == "cnn_pool_first":
        return nn.Sequential(c1, nn.AvgPool2d(2), nn.ReLU(), c2, nn.AvgPool2d(2), nn.ReLU(),
                             nn.Flatten(), nn.Linear(64, 10))
    if kind == "cnn":
        return nn.Sequential(c1, nn.ReLU(), nn.AvgPool2d(2), c2, nn.ReLU(), nn.AvgPool2d(2),
                             nn.Flatten(), nn.Linear(64, 10))
    if kind == "cnn_stride":  # no pooling (Norse exports no pooling node)
        return nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
                             nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(64, 10))
    raise ValueError(kind)


_ANN_CACHE: dict[str, nn.Sequential] = {}
WANTED: set[str] = set()  # --fixtures: only these (empty: all)


def wanted(name: str) -> bool:
    return not WANTED or name in WANTED


def trained(kind: str) -> nn.Sequential:
    if kind in _ANN_CACHE:
        return _ANN_CACHE[kind]
    xtr, ytr, xte, yte = data()
    net = ann(kind)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(SEED)
    for _ in range(60):
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            loss = nn.functional.cross_entropy(net(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    print(f"  ANN {kind}: test accuracy {100 * acc:.1f} %")
    _ANN_CACHE[kind] = net
    return net


def activation_scales(net: nn.Sequential, x: torch.Tensor) -> list[float]:
    """99.9th percentile of every ReLU's output (and of the last layer's positive outputs)."""
    out, h = [], x
    with torch.no_grad():
        for m in net:
            h = m(h)
            if isinstance(m, nn.ReLU):
                out.append(float(torch.quantile(h.flatten()[h.flatten() > 0], 0.999)))
        pos = h.flatten()[h.flatten() > 0]
        out.append(float(torch.quantile(pos, 0.999)) if pos.numel() else 1.0)
    return out


def weighted(net: nn.Sequential) -> list[nn.Module]:
    return [m for m in net if isinstance(m, (nn.Linear, nn.Conv2d))]


def copy_weights(dst: nn.Module, src: nn.Module, factor: float = 1.0) -> None:
    with torch.no_grad():
        dst.weight.copy_(src.weight * factor)
        if dst.bias is not None:
            dst.bias.copy_(src.bias * factor)


# ----------------------------------------------------------------------------- running and storing
def stepwise(step, reset):
    """A ``run(x) -> (B, T, C)`` from a per-step function (state kept by the modules) and a
    reset."""
    def run(x):
        reset()
        with torch.no_grad():
            outs = []
            for _ in range(T):
                o = step(x)
                o = o[0] if isinstance(o, tuple) else o
                outs.append(o.reshape(o.shape[0], -1))
        return torch.stack(outs, 1)
    return run


def predict(run, x: torch.Tensor, readout: str) -> tuple[np.ndarray, np.ndarray]:
    """Scores: the output spikes summed over T ("spikes") or the output after step T
    ("membrane")."""
    with torch.no_grad():
        o = run(x).double()
    scores = (o.sum(1) if readout == "spikes" else o[:, -1]).numpy()
    return scores.argmax(1), scores


def pick_scale(build, x: torch.Tensor, y: torch.Tensor, readout: str,
               scales=(0.25, 0.5, 1.0, 2.0)) -> float:
    best, best_acc = None, -1.0
    for s in scales:
        p, _ = predict(build(s), x, readout)
        acc = float((p == y.numpy()).mean())
        if acc > best_acc:
            best, best_acc = s, acc
    return best


def store(name: str, graph, run, readout: str, framework: str, note: str) -> None:
    import nir
    _, _, xte, yte = data()
    pred, scores = predict(run, xte, readout)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.nir"
    if path.exists():
        path.unlink()
    import inspect
    kw = {"compression": None} if "compression" in inspect.signature(nir.write).parameters else {}
    try:  # uncompressed: gzip makes these tiny files larger
        nir.write(path, graph, **kw)
    except TypeError:  # nir cannot write the None input types / input_shape Sinabs and Norse leave
        path.unlink(missing_ok=True)
        import copy
        typed = copy.deepcopy(graph)
        try:
            typed.infer_types()
            graph = typed
            note += "; graph.infer_types() before nir.write (nir cannot write None input types)"
        except Exception:  # Norse's batch dimension and scalar parameters fail infer_types
            for node in graph.nodes.values():
                for attr in ("input_type", "output_type"):
                    d = getattr(node, attr, None) or {}
                    for k in d:
                        d[k] = np.array([]) if d[k] is None else d[k]
                if getattr(node, "input_shape", 0) is None:
                    node.input_shape = np.array([], dtype=np.int64)
            note += ("; None input types and Conv2d input_shape written as empty arrays (nir "
                     "cannot write None)")
        nir.write(path, graph, **kw)
    except RuntimeError:  # Rockpool 3.1.0's ExpSynTorch export keeps tau requiring grad
        path.unlink(missing_ok=True)
        for node in graph.nodes.values():
            for k, v in vars(node).items():
                if isinstance(v, torch.Tensor):
                    setattr(node, k, v.detach().numpy())
        note += "; parameter tensors detached before nir.write (values unchanged)"
        nir.write(path, graph, **kw)
    np.savez_compressed(OUT / f"{name}.npz", pred=pred.astype(np.int8),
                        scores=scores.astype(np.float16), T=np.int64(T),
                        labels=yte.numpy().astype(np.int8), x_sum=np.float64(xte.double().sum()),
                        readout=readout, framework=framework, version=md.version(framework),
                        nir_version=md.version("nir"), note=note)
    acc = float((pred == yte.numpy()).mean())
    counts = np.bincount(pred, minlength=10)
    print(f"  {name}: {framework} {md.version(framework)} accuracy {100 * acc:.1f} % at T = {T}, "
          f"predicted classes {counts.tolist()}, {path.stat().st_size} B")
    if counts.max() > 0.5 * len(pred):
        raise SystemExit(f"{name}: degenerate predictions {counts.tolist()}")


def _ann_layers(kind: str):
    """(trained ANN, its weighted layers, lambda per neuron layer, training subset) for the
    threshold scale."""
    xtr, ytr, _, _ = data()
    net = trained(kind)
    lam = activation_scales(net, xtr[:500])
    return net, weighted(net), lam, xtr[:400], ytr[:400]


def _spiking_copy(layers, lam):
    """Weighted layers of the SNN: ANN weights times the previous layer's lambda (unit spikes)."""
    out = []
    for i, m in enumerate(layers):
        if isinstance(m, nn.Linear):
            c = nn.Linear(m.in_features, m.out_features)
        else:
            c = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride,
                          padding=m.padding)
        copy_weights(c, m, 1.0)
        if i > 0:
            with torch.no_grad():
                c.weight.mul_(lam[i - 1])
        out.append(c)
    return out


# ----------------------------------------------------------------------------- snnTorch
def make_snntorch() -> None:
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir
    beta = 0.9375  # 1 - 2**-4: a leak the PE's shift represents exactly

    def leaky(shape, thr, output=False):
        return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.full(shape, float(thr)),
                         init_hidden=True, output=output)

    for kind, name in (("mlp", "snntorch_mlp_leaky"),
                       ("cnn_pool_first", "snntorch_cnn_leaky_avgpool")):
        ann_net, layers, lam, xs, ys = _ann_layers(kind)
        shapes = [(48,), (10,)] if kind == "mlp" else [(8, 4, 4), (16, 2, 2), (10,)]

        def build(s, layers=layers, lam=lam, kind=kind, shapes=shapes):
            w = _spiking_copy(layers, lam)
            neurons = [leaky(sh, s * (1 - beta) * l, output=(i == len(shapes) - 1))
                       for i, (sh, l) in enumerate(zip(shapes, lam))]
            if kind == "mlp":
                mods = [nn.Flatten(), w[0], neurons[0], w[1], neurons[1]]
            else:
                mods = [w[0], nn.AvgPool2d(2), neurons[0], w[1], nn.AvgPool2d(2), neurons[1],
                        nn.Flatten(), w[2], neurons[2]]
            net = nn.Sequential(*mods)
            return stepwise(net, lambda: utils.reset(net)), net

        s = pick_scale(lambda s: build(s)[0], xs, ys, "spikes", scales=(4.0, 8.0, 16.0))
        run, net = build(s)
        sample = torch.zeros((1, 64) if kind == "mlp" else (1, 1, 8, 8))
        graph = export_to_nir(net, sample, ignore_dims=[0])
        store(name, graph, run, "spikes", "snntorch",
              f"snn.Leaky(beta={beta}, reset_mechanism='subtract' (default), init_hidden=True); "
              f"threshold scale {s}")


# ----------------------------------------------------------------------------- SpikingJelly
def make_spikingjelly() -> None:
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    for kind, name, model in (("mlp", "spikingjelly_mlp_if", "if"),
                              ("cnn", "spikingjelly_cnn_lif", "lif")):
        ann_net, layers, lam, xs, ys = _ann_layers(kind)

        def build(s, layers=layers, lam=lam, kind=kind, model=model):
            w = _spiking_copy(layers, lam)
            # IFNode / LIFNode(tau=2, decay_input=True) with the default hard reset v_reset = 0
            cell = (lambda l: neuron.IFNode(v_threshold=s * l)) if model == "if" else \
                (lambda l: neuron.LIFNode(tau=2.0, v_threshold=s * l))
            if kind == "mlp":
                mods = [nn.Flatten(), w[0], cell(lam[0]), w[1], cell(lam[1])]
            else:
                mods = [w[0], cell(lam[0]), nn.AvgPool2d(2), w[1], cell(lam[1]), nn.AvgPool2d(2),
                        nn.Flatten(), w[2], cell(lam[2])]
            net = nn.Sequential(*mods)
            return stepwise(net, lambda: functional.reset_net(net)), net

        s = pick_scale(lambda s: build(s)[0], xs, ys, "spikes", scales=(0.25, 0.5, 1.0))
        run, net = build(s)
        sample = torch.zeros((1, 1, 8, 8))
        functional.reset_net(net)
        graph = export_to_nir(net, sample, dt=1e-4)
        functional.reset_net(net)
        note = ("IFNode(v_reset=0.0) (default hard reset)" if model == "if" else
                "LIFNode(tau=2.0, decay_input=True, v_reset=0.0) (defaults)")
        note += f"; export dt=1e-4; threshold scale {s}"
        store(name, graph, run, "spikes", "spikingjelly", note)


# ----------------------------------------------------------------------------- Norse
def make_norse() -> None:
    import norse.torch as snn
    from norse.torch.functional.leaky_integrator_box import LIBoxParameters
    from norse.torch.functional.lif_box import LIFBoxParameters
    from norse.torch.functional.iaf import IAFParameters
    inv = 250.0  # dt * tau_mem_inv = 1/4 at Norse's dt = 1e-3: leak 1 - 2**-2

    for kind, name in (("mlp", "norse_mlp_lifbox_li"), ("cnn_stride", "norse_cnn_iaf_li")):
        ann_net, layers, lam, xs, ys = _ann_layers(kind)

        def build(s, layers=layers, lam=lam, kind=kind):
            w = _spiking_copy(layers, lam)
            if kind == "mlp":
                p = LIFBoxParameters(tau_mem_inv=torch.tensor(inv), v_th=torch.tensor(s * lam[0]))
                cells = [snn.LIFBoxCell(p)]
            else:
                cells = [snn.IAFCell(IAFParameters(v_th=torch.tensor(s * l))) for l in lam[:2]]
            if kind != "mlp":  # a 2x2 convolution as the dense head (see _NorseNet)
                head = nn.Conv2d(16, 10, 2)
                with torch.no_grad():
                    head.weight.copy_(w[2].weight.reshape(10, 16, 2, 2))
                    head.bias.copy_(w[2].bias)
                w[2] = head
            readout = snn.LIBoxCell(LIBoxParameters(tau_mem_inv=torch.tensor(inv)))
            net = _NorseNet(w, cells, readout)
            state = {"s": None}

            def step(x):
                out, state["s"] = net(x.flatten(1) if kind == "mlp" else x, state["s"])
                return out

            return stepwise(step, lambda: state.update(s=None)), net

        s = pick_scale(lambda s: build(s)[0], xs, ys, "membrane", scales=(0.25, 0.5, 1.0))
        run, net = build(s)
        graph = snn.to_nir(net, torch.zeros((1, 64) if kind == "mlp" else (1, 1, 8, 8)))
        note = (("LIFBoxCell" if kind == "mlp" else "IAFCell") + f"(tau_mem_inv={inv}) -> "
                f"LIBoxCell readout; to_nir dt=1e-3 (default); threshold scale {s}")
        store(name, graph, run, "membrane", "norse", note)


class _NorseNet(nn.Module):
    """weighted -> cell pairs and a leaky-integrator readout. Norse 1.1.0's export maps no Flatten
    module (an unmapped module becomes a None node nir cannot write) and a flatten inside forward
    cuts the traced graph, so the CNN's dense head is a 2x2 convolution over the 2x2 map."""

    def __init__(self, weighted_layers, cells, readout):
        super().__init__()
        self.w = nn.ModuleList(weighted_layers)
        self.cells = nn.ModuleList(cells)
        self.readout = readout

    def forward(self, x, state=None):
        state = list(state) if state is not None else [None] * (len(self.cells) + 1)
        for i, cell in enumerate(self.cells):
            x, state[i] = cell(self.w[i](x), state[i])
        x, state[-1] = self.readout(self.w[-1](x), state[-1])
        return x, state


# ----------------------------------------------------------------------------- Sinabs
def make_sinabs() -> None:
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike
    from sinabs.nir import to_nir

    tau = float(-1.0 / np.log(0.75))  # LIF: exp(-1/tau) = 1 - 2**-2
    for kind, name, model in (("mlp", "sinabs_mlp_iaf", "iaf"),
                              ("cnn", "sinabs_cnn_iaf_sumpool", "iaf"),
                              ("mlp", "sinabs_mlp_lif", "lif")):
        if not wanted(name):
            continue
        ann_net, layers, lam, xs, ys = _ann_layers(kind)

        def build(s, layers=layers, lam=lam, kind=kind, model=model):
            w = _spiking_copy(layers, lam)

            def cell(l, b):  # single spikes (the default MultiSpike has no NIR form)
                if model == "lif":  # norm_input=True (default): v = a v + (1 - a) I
                    return sl.LIFSqueeze(tau_mem=tau, spike_threshold=s * l, spike_fn=SingleSpike,
                                         batch_size=b)
                return sl.IAFSqueeze(spike_threshold=s * l, spike_fn=SingleSpike, batch_size=b)

            if kind != "mlp":
                with torch.no_grad():  # SumPool2d counts 4x what AvgPool2d averages
                    w[1].weight.div_(4)
                    w[2].weight.div_(4)

            def make(b):
                if kind == "mlp":
                    return nn.Sequential(nn.Flatten(), w[0], cell(lam[0], b), w[1],
                                         cell(lam[1], b))
                return nn.Sequential(w[0], cell(lam[0], b), sl.SumPool2d(2), w[1], cell(lam[1], b),
                                     sl.SumPool2d(2), nn.Flatten(), w[2], cell(lam[2], b))

            cache = {}

            def run(x):
                b = x.shape[0]
                if b not in cache:
                    cache[b] = make(b) if not cache else _rebatch(next(iter(cache.values())), b)
                net = cache[b]
                sinabs.reset_states(net)
                xt = x.unsqueeze(1).expand(b, T, *x.shape[1:]).reshape(b * T, *x.shape[1:])
                with torch.no_grad():
                    return net(xt).reshape(b, T, -1)

            return run, cache, make

        s = pick_scale(lambda s: build(s)[0], xs, ys, "spikes", scales=(0.25, 0.5, 1.0))
        run, cache, make = build(s)
        net1 = make(1)
        for m, src in zip(weighted(net1), weighted(next(iter(cache.values())) if cache else net1)):
            copy_weights(m, src)
        graph = to_nir(net1, torch.zeros((1, 64) if kind == "mlp" else (1, 1, 8, 8)))
        what = (f"LIFSqueeze(tau_mem={tau:.6g}, norm_input=True (default), " if model == "lif"
                else "IAFSqueeze(")
        store(name, graph, run, "spikes", "sinabs",
              f"{what}spike_fn=SingleSpike, reset_fn=MembraneSubtract (default)); "
              f"threshold scale {s}")


def _rebatch(net: nn.Sequential, b: int) -> nn.Sequential:
    import copy
    new = copy.deepcopy(net)
    for m in new.modules():
        if hasattr(m, "batch_size"):
            m.batch_size = b
    return new


# ----------------------------------------------------------------------------- Rockpool
def make_rockpool() -> None:
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFNeuronTorch, LinearTorch, ExpSynTorch
    from rockpool.nn.modules.torch.nir import to_nir
    dt = 1e-3
    tau = float(-dt / np.log(1 - 2 ** -2))  # exp(-dt/tau) = 1 - 2**-2

    ann_net, layers, lam, xs, ys = _ann_layers("mlp")

    def build(s):
        w = _spiking_copy(layers, lam)

        def lin(m):
            return LinearTorch((m.in_features, m.out_features), weight=m.weight.detach().T.clone(),
                               bias=m.bias.detach().clone(), has_bias=True)

        net = Sequential(lin(w[0]), LIFNeuronTorch(48, tau_mem=tau, threshold=s * lam[0], dt=dt,
                                                   max_spikes_per_dt=torch.tensor(1.0)),
                         lin(w[1]), ExpSynTorch(10, tau=tau, dt=dt))

        def run(x):
            xt = x.reshape(x.shape[0], 1, -1).expand(x.shape[0], T, 64).contiguous()
            net.reset_state()
            with torch.no_grad():
                out, _, _ = net(xt)
            return out

        return run, net

    s = pick_scale(lambda s: build(s)[0], xs, ys, "membrane", scales=(1.0, 2.0, 4.0))
    run, net = build(s)
    graph = to_nir(net, torch.zeros((1, T, 64)))
    store("rockpool_mlp_lif_expsyn", graph, run, "membrane", "rockpool",
          f"LIFNeuronTorch(tau_mem={tau:.6g}, dt={dt}, max_spikes_per_dt=1) -> ExpSynTorch "
          "readout; "
          f"threshold scale {s}")


# ----------------------------------------------------------------------------- refused neurons
def make_refused() -> None:
    """The current-based default neurons of Norse (LIFCell) and Rockpool (LIFTorch) and snnTorch's
    Synaptic export CubaLIF; tiny random MLPs, NIR only (the tests expect a one-line refusal)."""
    import nir
    torch.manual_seed(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    graphs = {}
    import norse.torch as nsnn
    graphs["norse_mlp_lifcell_cubalif"] = nsnn.to_nir(
        nsnn.SequentialState(nn.Linear(64, 16), nsnn.LIFCell(), nn.Linear(16, 10)),
        torch.zeros(1, 64))
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir
    rp = Sequential(LinearTorch((64, 16)), LIFTorch(16), LinearTorch((16, 10)))
    graphs["rockpool_mlp_liftorch_cubalif"] = to_nir(rp, torch.zeros(1, T, 64))
    import snntorch as snn
    from snntorch.export_nir import export_to_nir
    graphs["snntorch_mlp_synaptic_cubalif"] = export_to_nir(
        nn.Sequential(nn.Linear(64, 16),
                      snn.Synaptic(alpha=torch.full((16,), 0.5), beta=torch.full((16,), 0.9),
                                   threshold=torch.ones(16), init_hidden=True),
                      nn.Linear(16, 10)), torch.zeros(1, 64), ignore_dims=[0])
    for name, g in graphs.items():
        path = OUT / f"{name}.nir"
        path.unlink(missing_ok=True)
        for node in g.nodes.values():
            for k, v in vars(node).items():
                if isinstance(v, torch.Tensor):
                    setattr(node, k, v.detach().numpy())
        nir.write(path, g, compression=None)
        kinds = sorted({type(v).__name__ for v in g.nodes.values()})
        print(f"  {name}: {kinds}, {path.stat().st_size} B")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(FRAMEWORKS), help="comma-separated frameworks")
    ap.add_argument("--fixtures", default=None, help="comma-separated fixture names (default all)")
    a = ap.parse_args(argv)
    if a.fixtures:
        WANTED.update(a.fixtures.split(","))
    for fw in a.only.split(","):
        print(f"{fw}:")
        globals()[f"make_{fw}"]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
