"""hwsim kernels vs the plain numpy reference, bit for bit (contract sec. 3-6)."""

import os
import textwrap

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atsnn.config import load_hardware
from compiler.pipeline import compile_model
from exact_check import assert_engine_matches_reference, first_multi_pass_program, run_without_jit
from netgen import random_inputs, random_network


def _compare(program, x, T):
    return assert_engine_matches_reference(program, x, T, cl_init=0.99, tau_cl=0.995)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), small=st.booleans(), T=st.integers(1, 4))
def test_engine_matches_reference(seed, small, T):
    hw = load_hardware("atsnn28-small" if small else "atsnn28")
    net = random_network(seed)
    program = compile_model(net, hw=hw, input_max=1.0)
    _compare(program, random_inputs(net, 5, seed), T)


def test_tight_memory_forces_passes_and_still_matches():
    hw = load_hardware("atsnn28-small").replace(pe={"data_memory_bytes": 64})
    seed, net, program = first_multi_pass_program(lambda s: random_network(s, kind="residual"), hw)
    _compare(program, random_inputs(net, 4, seed), 3)


def test_kernels_without_jit():
    code = textwrap.dedent("""
        import sys, numpy as np
        sys.path.insert(0, %r)
        from atsnn.config import load_hardware
        from compiler.pipeline import compile_model
        from hwsim.engine import simulate
        from hwsim.inputs import quantize_input
        from hwsim.reference import reference_run
        from netgen import random_network, random_inputs
        net = random_network(3)
        p = compile_model(net, hw=load_hardware('atsnn28-small'), input_max=1.0)
        xq = quantize_input(p, random_inputs(net, 3, 3))
        tr = simulate(p, xq, T=3, already_quantized=True)
        ref = reference_run(p, xq, 3)
        assert np.array_equal(tr.u, ref.u)
        import hwsim.kernels as k
        # with NUMBA_DISABLE_JIT the kernel is the plain Python function, not a dispatcher
        assert type(k.neuron_update_batch).__name__ == 'function'
        print('ok')
    """ % os.path.dirname(__file__))
    run_without_jit(code)
