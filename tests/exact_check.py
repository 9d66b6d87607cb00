"""Shared checks of the exact simulator (atsnn.hwsim.engine) against the numpy reference (atsnn.hwsim.reference)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from atsnn.compiler.pipeline import compile_model
from atsnn.hwsim.engine import simulate
from atsnn.hwsim.inputs import quantize_input
from atsnn.hwsim.policies import evaluate
from atsnn.hwsim.reference import reference_run
from atsnn.hwsim.reference_costs import DYNAMIC, reference_costs, reference_policy

#: per-layer (samples, T) counters compared bit for bit, next to the output membranes and the spike counts
FIELDS = ("events", "synops", "compute_cycles", "sat_hi", "sat_lo")
#: per-layer (samples, T) cost figures compared with :mod:`atsnn.hwsim.reference_costs`, bit for bit
COST_FIELDS = ("stall_cycles", "cycles", "glb_bytes", "dram_bytes")
#: policies and their parameters compared per inference (exit step, cycles, energy per component)
POLICY_CASES = (("fixed", {}), ("dtsnn", {"theta": 0.6}), ("atsn", {"cl_init": 0.9, "tau_cl": 0.95}))


def assert_costs_match_reference(program, tr, ref) -> None:
    """Every cost figure of the trace ``tr`` equals :mod:`atsnn.hwsim.reference_costs` computed on ``ref``:
    per layer and timestep the stall and total cycles, GLB and DRAM bytes (exact) and the energy of
    every dynamic component (to 1e-12 relative: the same counted actions summed in another order), the
    PEs' busy cycles; per policy of :data:`POLICY_CASES` (ATSN when the program has an AT unit) the
    exit timestep, prediction, cycles (exact) and energy per component, leakage included."""
    rc = reference_costs(program, ref, tr.costs)
    for l in program.layers:
        got, want = tr.layers[l.name], rc.layers[l.name]
        for f in COST_FIELDS:
            np.testing.assert_array_equal(got[f], getattr(want, f), err_msg=f"{l.name}.{f}")
        for c in DYNAMIC:
            np.testing.assert_allclose(got[f"energy_{c}"], want.energy_pj[c], rtol=1e-12, atol=1e-9,
                                       err_msg=f"{l.name}.energy_{c}")
        np.testing.assert_array_equal(tr.busy[l.name], ref.busy[l.name], err_msg=f"{l.name}.busy")
    for policy, params in POLICY_CASES:
        if policy == "atsn" and program.at is None:
            continue
        got = evaluate(tr, policy, **params)
        want = reference_policy(program, ref, rc, policy, **params)
        np.testing.assert_array_equal(got.exit_t, want.exit_t, err_msg=f"{policy}.exit_t")
        np.testing.assert_array_equal(got.predicted, want.predicted, err_msg=f"{policy}.predicted")
        np.testing.assert_array_equal(got.cycles, want.cycles, err_msg=f"{policy}.cycles")
        for c, e in want.energy_by_component.items():
            np.testing.assert_allclose(got.energy_by_component[c], e, rtol=1e-12, atol=1e-9,
                                       err_msg=f"{policy}.energy_{c}")


def assert_engine_matches_reference(program, x, T: int, *, quantized: bool = False, **reference_kwargs):
    """Quantize the real inputs ``x`` (unless ``quantized``), run both and assert equality; returns
    ``(trace, reference)``.

    The engine runs in batches of 3 samples (so several batches meet), on the same quantized inputs
    as :func:`atsnn.hwsim.reference.reference_run` (called with ``reference_kwargs``, e.g. ``cl_init`` and
    ``tau_cl``). Equal must be: ``u``, for every layer the spike counts and each of :data:`FIELDS`,
    and every cost figure (:func:`assert_costs_match_reference`).
    """
    xq = x if quantized else quantize_input(program, x)
    ref = reference_run(program, xq, T, **reference_kwargs)
    tr = simulate(program, xq, T=T, already_quantized=True, batch_size=3)
    np.testing.assert_array_equal(tr.u, ref.u)
    for l in program.layers:
        np.testing.assert_array_equal(tr.layers[l.name]["spikes"], ref.spike_counts[l.name], err_msg=l.name)
        for f in FIELDS:
            np.testing.assert_array_equal(tr.layers[l.name][f], getattr(ref, f)[l.name], err_msg=f"{l.name}.{f}")
    from atsnn.ilif import is_ilif
    if not is_ilif(program):  # iLIF's two-phase costs (sec. 10) are checked in tests/test_ilif.py
        assert_costs_match_reference(program, tr, ref)
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
