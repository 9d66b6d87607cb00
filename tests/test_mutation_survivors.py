"""Tests that kill mutants which survived the mutation runs (README, "Mutation testing").

Each expected value is computed by hand from docs/hardware.md, never by the code under test.
"""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from atsnn.errors import SimulationInputError
from hwsim.energy import COMPONENTS
from hwsim.policies import atsn_exit, check_params, dtsnn_exit, evaluate


# ---------------------------------------------------------------------------- hwsim/policies.py
@pytest.mark.parametrize("policy, theta, cl_init, tau_cl, message", [
    ("early", None, None, None, "unknown policy 'early' (choose fixed, dtsnn, atsn)"),
    ("dtsnn", None, None, None, "--theta must be in (0, 1] for dtsnn, not None"),
    ("dtsnn", 0.0, None, None, "--theta must be in (0, 1] for dtsnn, not 0.0"),
    ("dtsnn", 1.5, None, None, "--theta must be in (0, 1] for dtsnn, not 1.5"),
    ("atsn", None, None, 0.5, "--cl-init must be in (0, 1] for atsn, not None"),
    ("atsn", None, 0.0, 0.5, "--cl-init must be in (0, 1] for atsn, not 0.0"),
    ("atsn", None, 1.5, 0.5, "--cl-init must be in (0, 1] for atsn, not 1.5"),
    ("atsn", None, 0.5, None, "--tau-cl must be in (0, 1] for atsn, not None"),
    ("atsn", None, 0.5, 0.0, "--tau-cl must be in (0, 1] for atsn, not 0.0"),
    ("atsn", None, 0.5, 2.0, "--tau-cl must be in (0, 1] for atsn, not 2.0"),
])
def test_policy_parameters_outside_their_ranges_are_refused(policy, theta, cl_init, tau_cl, message):
    with pytest.raises(SimulationInputError) as e:
        check_params(policy, theta, cl_init, tau_cl)
    assert str(e.value) == message


def test_policy_parameters_at_the_closed_ends_are_accepted():
    # theta, CL_init and tau_CL all live in (0, 1]: 1.0 itself is allowed
    check_params("dtsnn", 1.0, None, None)
    check_params("atsn", None, 1.0, 1.0)
    check_params("fixed", None, None, None)


def _layer(name="L", neuron="if", extra=None):
    return NS(name=name, neuron=neuron, extra=extra or {})


def _u_trace(u, *, scale=1.0, at=None, layers=None, name="p"):
    u = np.asarray(u, dtype=np.int64)
    prog = NS(name=name, output_layer=NS(scale=scale), at=at, layers=layers or [_layer()], hardware=None)
    return NS(program=prog, u=u, T=u.shape[1])


def test_atsn_without_at_unit_is_refused():
    with pytest.raises(SimulationInputError) as e:
        atsn_exit(_u_trace([[[1, 0]]], name="net"), 0.5, 0.5)
    assert str(e.value) == ("program 'net' has no AT unit for its output layer (early_exit = false); "
                            "use --policy fixed")


def test_dtsnn_entropy_uses_the_logit_scale():
    # u_real = u * s_out * logit_scale / t (contract sec. 5). For two classes the normalised entropy of
    # softmax([z, 0]) is H(p)/ln 2 with p = 1/(1+e^-z):
    #   z = 4: p = 0.98201, H = 0.09011 nats -> 0.1300;  z = 2: 0.5271;  z = 1: 0.8400
    u = [[[2, 0], [2, 0]]]  # (S=1, T=2, C=2)
    at = NS(logit_scale=2.0)
    # at t = 1, z = 2 * 1 * 2 / 1 = 4: entropy 0.13 < 0.2 -> exit at t = 1
    assert dtsnn_exit(_u_trace(u, at=at), 0.2).tolist() == [1]
    # a program without AT unit has logit_scale 1: z = 2 at t = 1 (0.527), 1 at t = 2 (forced exit at T)
    assert dtsnn_exit(_u_trace(u, at=None), 0.3).tolist() == [2]
    assert dtsnn_exit(_u_trace(u, at=None), 0.6).tolist() == [1]
    # s_out scales the same way: s_out = 2, logit_scale = 1 -> z = 4
    assert dtsnn_exit(_u_trace(u, scale=2.0, at=None), 0.2).tolist() == [1]


def test_dtsnn_entropy_is_stable_for_large_and_mixed_logits():
    # sample 0: z = [1000, 0]: p = [1, exp(-1000) = 0 in float64], entropy 0 -> exit at t = 1;
    # sample 1: z = [3, 0]: p = 0.95257, H = 0.19087 nats -> 0.2754 < 0.5 -> exit at t = 1.
    # (softmax computed per sample and timestep, shifted by its own maximum, 0 * log 0 taken as 0)
    u = [[[1000, 0], [1000, 0]], [[3, 0], [6, 0]]]
    assert dtsnn_exit(_u_trace(u), 0.5).tolist() == [1, 1]


def test_dtsnn_exits_only_below_theta():
    # equal logits: p = [1/2, 1/2], normalised entropy exactly 1; theta = 1 is not above it -> run to T
    assert dtsnn_exit(_u_trace([[[0, 0], [0, 0], [0, 0]]]), 1.0).tolist() == [3]


def _policy_trace(labels=(0, 0), layers=None):
    """A two-sample, T = 3, C = 2 trace with one layer whose numbers are chosen for hand arithmetic:
    cycles [[10, 20, 30], [1, 2, 3]], energy of component i = 10**i x [[1, 2, 4], [8, 16, 32]]."""
    base = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
    rec = {"cycles": np.array([[10, 20, 30], [1, 2, 3]], dtype=np.int64)}
    for i, c in enumerate(COMPONENTS[:-1]):
        rec[f"energy_{c}"] = base * 10.0 ** i
    u = np.zeros((2, 3, 2), dtype=np.int64)
    u[0, 0] = [5, 1]   # sample 0 predicts class 0 at t = 1
    u[0, 2] = [0, 9]   # ... and class 1 at t = 3
    u[1, :] = [0, 7]   # sample 1 predicts class 1
    hw = NS(cycles=NS(at_exp=5, at_decision=7))
    prog = NS(name="p", hardware=hw, output_layer=NS(scale=1.0), at=NS(logit_scale=1.0),
              layers=layers or [_layer()])
    action = NS(at_exit_per_class=3.0, at_exit_per_step=4.0, dtsnn_per_class=0.25, dtsnn_per_step=0.5,
                leakage_pj=lambda cycles, policy: 2.0 * np.asarray(cycles, dtype=np.float64))
    return NS(program=prog, u=u, T=3, labels=None if labels is None else np.array(labels), layers={"L": rec},
              action=action, input_load_cycles=9, input_load_energy_pj=0.5,
              step_cycles=lambda: rec["cycles"])


def test_atsn_costs_up_to_each_exit_by_hand():
    tr = _policy_trace()
    r = evaluate(tr, "atsn", cl_init=0.5, tau_cl=0.5, exit_t=np.array([1, 3]))
    # AT unit per timestep: at_exp * C + at_decision = 5 * 2 + 7 = 17 cycles, 3 * 2 + 4 = 10 pJ
    # sample 0 (exit 1): 10 + 17 + 9 (input load) = 36; sample 1: (1+2+3) + 3 * 17 + 9 = 66
    assert r.cycles.tolist() == [36, 66]
    assert r.predicted.tolist() == [0, 1] and r.accuracy == 0.5
    e = r.energy_by_component
    assert e["pe_logic"].tolist() == [1.0, 56.0]
    assert e["pe_memory"].tolist() == [10.0, 560.0]
    assert e["spike_buffers"].tolist() == [100.0, 5600.0]
    assert e["at_unit"].tolist() == [1000.0 + 10.0, 56000.0 + 30.0]
    assert e["glb"].tolist() == [10000.0, 560000.0]
    assert e["dram"].tolist() == [100000.5, 5600000.5]
    assert e["leakage"].tolist() == [72.0, 132.0]
    assert r.energy_pj.tolist() == [111111.5 + 10.0 + 72.0, 6222216.5 + 30.0 + 132.0]
    assert r.pe_energy_pj == (111.0 + 6216.0) / 2
    assert r.at_energy_pj == (1010.0 + 56030.0) / 2
    assert r.energy_by_layer["L"] == {"pe_logic": 28.5, "pe_memory": 285.0, "spike_buffers": 2850.0,
                                      "at_unit": 28500.0, "glb": 285000.0, "dram": 2850000.0}
    assert r.energy_by_layer["(system)"] == {"pe_logic": 0.0, "pe_memory": 0.0, "spike_buffers": 0.0,
                                             "at_unit": 20.0, "glb": 0.0, "dram": 0.5, "leakage": 102.0}
    assert r.params == {"cl_init": 0.5, "tau_cl": 0.5}


def test_fixed_is_the_default_policy_and_runs_every_step():
    r = evaluate(_policy_trace(labels=None))
    assert r.policy == "fixed" and r.params == {"T": 3}
    assert r.exit_t.tolist() == [3, 3] and r.exit_t.dtype == np.int64
    assert r.cycles.tolist() == [69, 15]  # no policy unit: 60 + 9, 6 + 9
    assert r.predicted.tolist() == [1, 1]
    assert r.accuracy is None
    assert r.energy_by_component["at_unit"].tolist() == [7000.0, 56000.0]
    assert r.energy_by_layer["(system)"]["at_unit"] == 0.0


def test_dtsnn_charges_its_unit_and_records_theta():
    r = evaluate(_policy_trace(), "dtsnn", theta=0.5, exit_t=np.array([2, 1]))
    # 17 cycles and 0.25 * 2 + 0.5 = 1 pJ per timestep
    assert r.cycles.tolist() == [10 + 20 + 2 * 17 + 9, 1 + 17 + 9]
    assert r.energy_by_component["at_unit"].tolist() == [3000.0 + 2.0, 8000.0 + 1.0]
    assert r.params == {"theta": 0.5}


def test_exit_policies_are_refused_on_ilif_programs_but_fixed_runs():
    ilif = [_layer("h", "ilif", {"ilif": {"T": 3, "k": 2}})]
    tr = _policy_trace(layers=ilif)
    assert evaluate(tr, "fixed").exit_t.tolist() == [3, 3]
    for policy, kw in (("dtsnn", {"theta": 0.5}), ("atsn", {"cl_init": 0.5, "tau_cl": 0.5})):
        with pytest.raises(SimulationInputError) as e:
            evaluate(tr, policy, **kw)
        assert str(e.value) == (f"program 'p' is an iLIF program (layer 'h', T = 3): its output exists only "
                                f"after all T accumulate and fire steps, so the {policy} exit policy is "
                                "impossible; use --policy fixed")
    # with the exit timesteps given, the costs of any policy are evaluated (no exit test runs)
    assert evaluate(tr, "atsn", cl_init=0.5, tau_cl=0.5, exit_t=np.array([3, 3])).cycles.tolist() == [
        60 + 3 * 17 + 9, 6 + 3 * 17 + 9]
