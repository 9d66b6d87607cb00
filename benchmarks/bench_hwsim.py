"""Speed of hwsim (full cycle and energy accounting) against a functional-only float SNN forward pass.

Both run in one process on the same inputs: (a) ``atsnn.hwsim.engine.simulate`` and
(b) the float SNN of the same network, in PyTorch on the CPU when the ``torch``
extra is installed (``atsnn.compiler.float_sim_torch``), else numpy float32 with the
same im2col GEMM (``atsnn.compiler.float_sim.run_float``). Prints inferences/s,
synaptic events/s and the ratio of times (a)/(b), for the digits CNN and a
VGG16 CIFAR-10 topology at T = 4 (VGG16 also at steady state: per-inference cost and
per-call setup from two input counts), and the peak memory of a VGG16 run for two
input counts, extrapolated to 10,000 inputs. Targets on 2 cores: ratio <= 2.0,
at least 10 VGG16 inferences/s, a few GB for 10,000 CIFAR-size inputs.

    python benchmarks/bench_hwsim.py [--vgg-images 32] [--digits-images 540] [--digits-repeats 7]
                                     [--baseline auto|torch|numpy]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

T = 4


def _float_forward(net, x, baseline="auto", repeats=1):
    """Time the functional float SNN (median of ``repeats`` runs): PyTorch on the CPU when installed (or
    asked), numpy float32 otherwise."""
    try:
        if baseline == "numpy":
            raise ImportError
        import torch
        from atsnn.compiler.float_sim_torch import run_float_torch as run
        backend = f"torch {torch.__version__}"
        run(net, x[:2], T)  # warm-up
    except ImportError:
        if baseline == "torch":
            raise SystemExit("error: --baseline torch needs PyTorch (pip install -e '.[torch]')") from None
        from atsnn.compiler.float_sim import run_float
        run, backend = (lambda n, xx, t: run_float(n, xx, t)), "numpy float32"
    return _median_time(lambda: run(net, x, T), repeats), backend


def _median_time(fn, repeats, keep=None):
    """Median wall time of ``repeats`` calls of ``fn`` (seconds); the last call's result goes to ``keep``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    if keep is not None:
        keep.append(out)
    return float(np.median(times))


def bench(name, net, x, batch, baseline="auto", repeats=1):
    """One ``simulate`` call on all of ``x`` against the float SNN on the same inputs; each side's time is
    the median of ``repeats`` calls after a two-input warm-up (the first full-size call of either side
    pays one-off costs, e.g. allocator growth and thread pools; ``repeats`` = 1 times that call alone)."""
    from atsnn.compiler.pipeline import compile_model
    from atsnn.hwsim.engine import simulate
    program = compile_model(net)
    simulate(program, x[:2], T=T)  # warm-up (Numba compile / cache load)
    traces = []
    ta = _median_time(lambda: simulate(program, x, T=T, batch_size=batch), repeats, traces)
    tr = traces[0]
    tb, backend = _float_forward(net, x, baseline, repeats)
    synops = sum(float(d["synops"].sum()) for d in tr.layers.values())
    n = x.shape[0]
    reps = f" (median of {repeats})" if repeats > 1 else ""
    print(f"{name:8s} {n:5d} inputs{reps}, T={T}: hwsim {n / ta:9.1f} inf/s {synops / ta:11.3e} synops/s | "
          f"float SNN ({backend}) {n / tb:9.1f} inf/s | time ratio hwsim/float = {ta / tb:5.2f}")
    return ta / tb, n / ta


def steady_state(name, net, images, sizes, batch, baseline="auto"):
    """Per-inference times at steady state and the fixed cost per call, for hwsim and the float SNN.

    Each side runs ``sizes[0]`` and ``sizes[1]`` inputs; the slope of time over inputs is the per-inference
    cost of a long run (what 10,000 inputs cost), the intercept the per-call setup (hwsim: connectivity
    tables and the weight layouts of its kernels, made once per ``simulate`` call)."""
    from atsnn.compiler.pipeline import compile_model
    from atsnn.hwsim.engine import simulate
    program = compile_model(net)
    xs = [images(n) for n in sizes]
    simulate(program, xs[0][:2], T=T)  # warm-up
    ta = []
    for x in xs:
        t0 = time.perf_counter()
        simulate(program, x, T=T, batch_size=batch)
        ta.append(time.perf_counter() - t0)
    tb = [_float_forward(net, x, baseline) for x in xs]
    backend = tb[0][1]
    dn = sizes[1] - sizes[0]
    per_a, per_b = (ta[1] - ta[0]) / dn, (tb[1][0] - tb[0][0]) / dn
    setup_a = ta[0] - per_a * sizes[0]
    print(f"{name:8s} steady state ({sizes[0]} vs {sizes[1]} inputs): hwsim {1e3 * per_a:7.2f} ms/inf "
          f"(setup {setup_a:.2f} s per call) | float SNN ({backend}) {1e3 * per_b:7.2f} ms/inf | "
          f"time ratio hwsim/float = {per_a / per_b:5.2f}")
    return per_a / per_b


def memory(program, images, sizes=(16, 64)):
    """Peak traced memory of ``simulate`` for two input counts; extrapolated linearly to 10,000 inputs
    (inputs themselves included: float64 CIFAR-size images, 24.6 KB each)."""
    import tracemalloc

    from atsnn.hwsim import tables
    from atsnn.hwsim.engine import simulate
    peaks = []
    for n in sizes:
        x = images(n)
        tables._TABLE_CACHE.clear()  # the run's own tables count towards its peak
        tracemalloc.start()
        simulate(program, x, T=T, batch_size=8)
        peaks.append(tracemalloc.get_traced_memory()[1] + x.nbytes)
        tracemalloc.stop()
    per = (peaks[1] - peaks[0]) / (sizes[1] - sizes[0])
    est = peaks[0] + per * (10_000 - sizes[0])
    print(f"memory   VGG16 T={T}: peak {peaks[0] / 2**20:.0f} MiB for {sizes[0]} inputs, {peaks[1] / 2**20:.0f} MiB "
          f"for {sizes[1]}; {per / 1024:.1f} KiB per extra input -> about {est / 2**30:.2f} GiB for 10,000 inputs")
    return est


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vgg-images", type=int, default=32)
    ap.add_argument("--digits-images", type=int, default=540)
    ap.add_argument("--digits-repeats", type=int, default=7,
                    help="calls per side for the digits line, median reported (a call takes tens of ms)")
    ap.add_argument("--baseline", choices=["auto", "torch", "numpy"], default="auto",
                    help="float SNN baseline (auto: torch when installed)")
    a = ap.parse_args()
    from atsnn.compiler.nir_import import import_nir
    from atsnn.workloads.demo import MODEL
    from atsnn.workloads.digits import load_split
    from atsnn.workloads.topologies import build, synthetic_images
    _, _, xd, _ = load_split()
    rd, _ = bench("digits", import_nir(MODEL), xd[:a.digits_images], 1024, a.baseline, a.digits_repeats)
    vgg = build("vgg16")
    rv, ips = bench("vgg16", vgg, synthetic_images(a.vgg_images, 7), 8, a.baseline)
    rs = steady_state("vgg16", vgg, lambda n: synthetic_images(n, 11), (a.vgg_images, 4 * a.vgg_images), 8,
                      a.baseline)
    from atsnn.compiler.pipeline import compile_model
    est = memory(compile_model(vgg), lambda n: synthetic_images(n, 9))
    for name, r in (("digits", rd), ("vgg16", rv)):
        print(f"target ratio <= 2.0 for {name}: {'met' if r <= 2.0 else 'NOT met'} ({r:.2f})")
    print(f"target ratio <= 2.0 for vgg16 at steady state: {'met' if rs <= 2.0 else 'NOT met'} ({rs:.2f})")
    print(f"target >= 10 VGG16 inf/s: {'met' if ips >= 10 else 'NOT met'} ({ips:.1f})")
    print(f"target a few GB for 10,000 CIFAR-size inputs: {'met' if est <= 4 * 2**30 else 'NOT met'} "
          f"({est / 2**30:.2f} GiB)")


if __name__ == "__main__":
    main()
