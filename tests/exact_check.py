"""Shared checks of the exact simulator (hwsim.engine) against the numpy reference (hwsim.reference)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from compiler.pipeline import compile_model
from hwsim.engine import simulate
from hwsim.inputs import quantize_input
from hwsim.reference import reference_run

#: per-layer (samples, T) counters compared bit for bit, next to the output membranes and the spike counts
FIELDS = ("events", "synops", "compute_cycles", "sat_hi", "sat_lo")


def assert_engine_matches_reference(program, x, T: int, **reference_kwargs):
    """Quantize the real inputs ``x``, run both and assert equality; returns ``(trace, reference)``.

    The engine runs in batches of 3 samples (so several batches meet), on the same quantized inputs
    as :func:`hwsim.reference.reference_run` (called with ``reference_kwargs``, e.g. ``cl_init`` and
    ``tau_cl``). Equal must be: ``u``, and for every layer the spike counts and each of :data:`FIELDS`.
    """
    xq = quantize_input(program, x)
    ref = reference_run(program, xq, T, **reference_kwargs)
    tr = simulate(program, xq, T=T, already_quantized=True, batch_size=3)
    np.testing.assert_array_equal(tr.u, ref.u)
    for l in program.layers:
        np.testing.assert_array_equal(tr.layers[l.name]["spikes"], ref.spike_counts[l.name], err_msg=l.name)
        for f in FIELDS:
            np.testing.assert_array_equal(tr.layers[l.name][f], getattr(ref, f)[l.name], err_msg=f"{l.name}.{f}")
    return tr, ref


def first_multi_pass_program(make_net, hw, seeds=range(100)):
    """The first seed whose network ``make_net(seed)``, compiled for ``hw`` (``input_max=1.0``), maps a
    layer in more than one pass; returns ``(seed, net, program)`` and fails the test if no seed does."""
    for seed in seeds:  # deterministic: the first network that needs several passes
        net = make_net(seed)
        program = compile_model(net, hw=hw, input_max=1.0)
        if max(l.mapping.passes for l in program.layers) > 1:
            break
    assert max(l.mapping.passes for l in program.layers) > 1
    return seed, net, program


def run_without_jit(code: str, *, timeout: int = 300) -> None:
    """Run the Python source ``code`` in a fresh interpreter with ``NUMBA_DISABLE_JIT=1`` (the kernels as
    plain Python); passes when it exits with status 0 and its output ends with ``ok``."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")
