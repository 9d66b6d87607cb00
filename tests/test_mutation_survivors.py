"""Tests that kill mutants which survived the mutation runs (README, "Mutation testing").

Each expected value is computed by hand from docs/hardware.md, never by the code under test.
"""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from atsnn.errors import SimulationInputError
from atsnn.hwsim.energy import COMPONENTS
from atsnn.hwsim.policies import atsn_exit, check_params, dtsnn_exit, evaluate


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


# ---------------------------------------------------------------------------- hwsim/energy.py
class _Costs:
    """A cost table with round numbers: memories in pJ per byte, logic ``P[kind] x bits`` pJ, so every
    term of contract sec. 8 can be told apart in a hand sum."""

    PER_BYTE = {("spike_buffer", "read"): 1.0, ("spike_buffer", "write"): 2.0,
                ("pe_data_memory", "read"): 4.0, ("pe_data_memory", "write"): 8.0,
                ("at_data_memory", "read"): 16.0, ("at_data_memory", "write"): 32.0,
                ("glb", "read"): 64.0, ("glb", "write"): 128.0}
    P = {"add": 1.0, "compare": 3.0, "shift": 5.0, "mul": 7.0}
    ACCESS = {("at_data_memory", "read"): 0.5, ("dtsnn_lut", "read"): 0.25}
    LEAK = {"pe_data_memory": 1.0, "spike_buffer": 2.0, "adder16": 4.0, "comparator16": 8.0, "register16": 16.0,
            "at_data_memory": 32.0, "multiplier16": 64.0, "glb_bank": 128.0, "dtsnn_lut": 256.0}
    dram_pj_per_byte = 256.0

    def memory_pj_per_byte(self, component, action):
        return self.PER_BYTE[(component, action)]

    def memory_access_pj(self, component, action):
        return self.ACCESS[(component, action)]

    def logic_pj(self, kind, bits):
        return self.P[kind] * bits

    def leakage_mw(self, component):
        return self.LEAK[component]


def _energy(psn=False):
    from atsnn.hwsim.energy import ActionEnergy

    # widths chosen so that ceil(bits / 8) bytes differ from any other rounding: 9 -> 2 B, 17 -> 3 B
    hw = NS(numeric=NS(weight_bits=8, accumulator_bits=17, membrane_bits=9, event_bytes=2, psn_tap_bits=8),
            at=NS(membrane_bits=17, exp_table_value_bits=16, cl_frac_bits=16),
            pe_count=3, array=NS(at_units=1), memory=NS(glb_banks=2), system=NS(clock_hz=1e9))
    return ActionEnergy(hw, _Costs(), psn=psn)


_COUNTS = dict(deliveries=[3, 0], synops=[5, 1], spikes=[2, 0], glb_read_bytes=[10, 0], glb_write_bytes=[1, 0],
               dram_bytes=[0, 2])


def test_state_widths_round_up_to_whole_bytes():
    a = _energy()
    assert (a.wbytes, a.accbytes, a.membytes, a.at_membytes) == (1.0, 3, 2, 3)


def test_pe_layer_energy_by_hand():
    a = _energy()
    e = a.layer_energy(unit="pe", leak=True, subtract=True, neurons=4, weights_streamed=False, **_COUNTS)
    assert set(e) == {"pe_logic", "pe_memory", "spike_buffers", "at_unit", "glb", "dram"}
    # buffers: deliveries x 2 B x (write 2 + read 1) + 4/8 B of output bits x 3
    assert e["spike_buffers"].tolist() == [19.5, 1.5]
    # memory: synops x (1 B weight x 4 + 3 B accumulator x (4 + 8)) + 4 neurons x (2 + 3) B x 12
    assert e["pe_memory"].tolist() == [440.0, 280.0]
    # logic: synops x add17 + 4 x (2 x add17 + 3 x cmp9 + leak add9) + spikes x add9 (reset)
    assert e["pe_logic"].tolist() == [85.0 + 496.0 + 18.0, 17.0 + 496.0]
    assert e["at_unit"].tolist() == [0.0, 0.0]
    assert e["glb"].tolist() == [10 * 64.0 + 128.0, 0.0] and e["dram"].tolist() == [0.0, 512.0]


def test_pe_layer_with_a_current_shift_charges_one_shift_per_update():
    a = _energy()
    base = a.layer_energy(unit="pe", leak=True, subtract=True, neurons=4, weights_streamed=False, **_COUNTS)
    e = a.layer_energy(unit="pe", leak=True, subtract=True, neurons=4, weights_streamed=False, current_shift=2,
                       **_COUNTS)
    assert (e["pe_logic"] - base["pe_logic"]).tolist() == [4 * 85.0, 4 * 85.0]  # shift17 = 5 x 17


@pytest.mark.parametrize("k, h_bits, upd_logic, upd_mem", [
    # H = membrane 9 + taps 8 + ceil(log2 k); update logic: add17 + 2 x cmp9 + k x mul9 + (k - 1) x addH + cmpH;
    # memory: accumulator 3 B x (4 + 8) + (k - 1) history words of 2 B read and written x 12
    (1, 17, 17 + 54 + 63 + 51, 36.0),
    (2, 18, 17 + 54 + 2 * 63 + 18 + 54, 36.0 + 24.0),
    (3, 19, 17 + 54 + 3 * 63 + 2 * 19 + 57, 36.0 + 48.0),
])
def test_psn_update_energy_by_hand(k, h_bits, upd_logic, upd_mem):
    a = _energy(psn=True)
    assert a.psn_h_bits(k) == h_bits
    assert a.psn_update_pj(k) == (upd_logic, upd_mem)
    e = a.layer_energy(unit="pe", leak=False, subtract=False, neurons=4, weights_streamed=True, psn_k=k, **_COUNTS)
    # streamed weights are not read from the data memory: synops x 3 B x 12 + 4 updates
    assert e["pe_memory"].tolist() == [5 * 36.0 + 4 * upd_mem, 36.0 + 4 * upd_mem]
    assert e["pe_logic"].tolist() == [5 * 17.0 + 4 * upd_logic, 17.0 + 4 * upd_logic]
    assert e["spike_buffers"].tolist() == [19.5, 1.5] and e["at_unit"].tolist() == [0.0, 0.0]
    assert set(e) == {"pe_logic", "pe_memory", "spike_buffers", "at_unit", "glb", "dram"}
    # resident weights add a 1 B weight read (x 4 pJ) per synop
    e = a.layer_energy(unit="pe", leak=False, subtract=False, neurons=4, weights_streamed=False, psn_k=k, **_COUNTS)
    assert e["pe_memory"].tolist() == [5 * 40.0 + 4 * upd_mem, 40.0 + 4 * upd_mem]


def test_at_layer_energy_by_hand():
    a = _energy()
    for leak, leak_pj in ((True, 17.0), (False, 0.0)):
        e = a.layer_energy(unit="at", leak=leak, subtract=False, neurons=2, weights_streamed=False, **_COUNTS)
        assert set(e) == {"pe_logic", "pe_memory", "spike_buffers", "at_unit", "glb", "dram"}
        for c in ("pe_logic", "pe_memory", "spike_buffers"):
            assert e[c].tolist() == [0.0, 0.0]
        # buffers 3 x 2 B x 3 + 2/8 B x 3; memory: synops x (1 B x 16 + 3 B x 48) + 2 x (3 + 3) B x 48;
        # logic: synops x add17 + 2 x (2 x add17 + 2 x cmp17 (+ add17 for the leak))
        assert e["at_unit"].tolist() == [18.75 + 1376.0 + 85.0 + 2 * (136.0 + leak_pj),
                                         0.75 + 736.0 + 17.0 + 2 * (136.0 + leak_pj)]


def test_leakage_by_hand():
    a, p = _energy(), _energy(psn=True)
    # PE: memory 1 + 2 buffers x 2 + 2 adders x 4 + 3 comparators x 8 + 2 registers x 16 = 69 mW;
    # AT: 32 + 2 x 2 + 2 multipliers x 64 + 2 x 4 + 8 + 2 x 16 = 212; GLB 2 banks x 128
    assert a.leakage_mw() == 3 * 69.0 + 212.0 + 256.0
    assert a.leakage_mw("dtsnn") == 3 * 69.0 + 212.0 + 256.0 + 256.0  # plus the DTSNN lookup tables
    assert p.leakage_mw() == 3 * (69.0 + 64.0) + 212.0 + 256.0  # one tap multiplier per PE (sec. 11)
    # 675 mW for 1000 cycles at 1 GHz = 675 nJ
    assert a.leakage_pj(np.array([1000, 2000])).tolist() == pytest.approx([675000.0, 1350000.0])


# ---------------------------------------------------------------------------- hwsim/reference_costs.py
def _ref(**by_layer):
    """Counts of one sample over T = 2 timesteps: every layer has synops [5, 1], deliveries [3, 0], spikes [2, 0]."""
    names = list(by_layer) or ["L"]
    return NS(synops={n: np.array([[5, 1]]) for n in names}, deliveries={n: np.array([[3, 0]]) for n in names},
              spike_counts={n: np.array([[2, 0]]) for n in names})


def _hw_widths():
    # 4-bit weights (half a byte per synop), 17-bit accumulator (3 B), 9-bit membrane (2 B), 20-bit AT membrane
    return NS(numeric=NS(weight_bits=4, accumulator_bits=17, membrane_bits=9, event_bytes=2, psn_tap_bits=8),
              at=NS(membrane_bits=20))


def _actions(acts):
    return {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (1, 2)).tolist() for k, v in acts.items()}


def _mapping(**kw):
    m = dict(unit="pe", weights_resident=True, spikes_in_dram=False, spilled_state_bytes_per_timestep=0,
             state_in_dram=False, streamed_weight_bytes_per_timestep=0, weights_in_dram=False)
    m.update(kw)
    return NS(**m)


def test_reference_counts_the_actions_of_a_pe_layer_by_hand():
    from atsnn.hwsim.reference_costs import _layer_actions

    layer = NS(name="L", neurons=4, neuron="if", extra={}, mapping=_mapping(), leak_shift=1, current_shift=2,
               reset="subtract")
    got = _actions(_layer_actions(NS(hardware=_hw_widths()), layer, _ref(L=1)))
    assert got == {
        # 3 deliveries x 2 B, plus 4/8 B of output bits, written and read
        ("spike_buffers", "spike_buffer", "write", None): [[6.5, 0.5]],
        ("spike_buffers", "spike_buffer", "read", None): [[6.5, 0.5]],
        # synops x (0.5 B weight + 3 B accumulator) + 4 neurons x (2 + 3) B; written: no weight
        ("pe_memory", "pe_data_memory", "read", None): [[37.5, 23.5]],
        ("pe_memory", "pe_data_memory", "write", None): [[35.0, 23.0]],
        ("pe_logic", "logic", "add", 17): [[5.0 + 8.0, 1.0 + 8.0]],   # synops + 2 per update (v1 + a + b)
        ("pe_logic", "logic", "compare", 9): [[12.0, 12.0]],          # 2 saturation + 1 threshold compare
        ("pe_logic", "logic", "add", 9): [[4.0 + 2.0, 4.0]],          # the leak per update, a subtract per spike
        ("pe_logic", "logic", "shift", 17): [[4.0, 4.0]],             # the current shift (a + r) >> c
    }


def test_reference_counts_the_actions_of_the_at_unit_by_hand():
    from atsnn.hwsim.reference_costs import _layer_actions

    layer = NS(name="L", neurons=2, neuron="integrator", extra={}, leak_shift=1, current_shift=0, reset="none",
               mapping=_mapping(unit="at", weights_resident=False))
    got = _actions(_layer_actions(NS(hardware=_hw_widths()), layer, _ref(L=1)))
    assert got == {
        ("at_unit", "spike_buffer", "write", None): [[6.25, 0.25]],
        ("at_unit", "spike_buffer", "read", None): [[6.25, 0.25]],
        # streamed weights are not read from memory: synops x 3 B + 2 x (3 + 3) B of state
        ("at_unit", "at_data_memory", "read", None): [[27.0, 15.0]],
        ("at_unit", "at_data_memory", "write", None): [[27.0, 15.0]],
        ("at_unit", "logic", "add", 17): [[5.0, 1.0]],
        ("at_unit", "logic", "add", 20): [[6.0, 6.0]],      # 2 per update + the leak, at the AT membrane width
        ("at_unit", "logic", "compare", 20): [[4.0, 4.0]],
    }


def test_reference_counts_the_actions_of_a_psn_layer_by_hand():
    from atsnn.hwsim.reference_costs import _layer_actions

    layer = NS(name="L", neurons=4, neuron="psn", extra={"psn": {"mode": "sliding", "taps": [1, 2, 3], "shift": 0}},
               mapping=_mapping(), leak_shift=0, current_shift=0, reset="none")
    got = _actions(_layer_actions(NS(hardware=_hw_widths()), layer, _ref(L=1)))
    assert got == {
        ("spike_buffers", "spike_buffer", "write", None): [[6.5, 0.5]],
        ("spike_buffers", "spike_buffer", "read", None): [[6.5, 0.5]],
        # synops x (0.5 + 3) B + 4 neurons x (3 B accumulator + 2 history words of 2 B)
        ("pe_memory", "pe_data_memory", "read", None): [[17.5 + 28.0, 3.5 + 28.0]],
        ("pe_memory", "pe_data_memory", "write", None): [[15.0 + 28.0, 3.0 + 28.0]],
        ("pe_logic", "logic", "add", 17): [[5.0 + 4.0, 1.0 + 4.0]],
        ("pe_logic", "logic", "compare", 9): [[8.0, 8.0]],
        ("pe_logic", "logic", "mul", 9): [[12.0, 12.0]],     # k = 3 taps per neuron
        ("pe_logic", "logic", "add", 19): [[8.0, 8.0]],      # k - 1 adds at H = 9 + 8 + ceil(log2 3) bits
        ("pe_logic", "logic", "compare", 19): [[4.0, 4.0]],
    }


def test_reference_traffic_by_kind_by_hand():
    from atsnn.hwsim.reference_costs import _traffic

    a = NS(name="A", neurons=20, neuron="if", synapses=[NS(source="input")],
           mapping=_mapping(weights_resident=False, streamed_weight_bytes_per_timestep=3))
    b = NS(name="B", neurons=9, neuron="if", synapses=[NS(source="A")],
           mapping=_mapping(spikes_in_dram=True, spilled_state_bytes_per_timestep=10))
    c = NS(name="C", neurons=2, neuron="integrator", synapses=[NS(source="B")],
           mapping=_mapping(spilled_state_bytes_per_timestep=4, state_in_dram=True, weights_resident=False,
                            weights_in_dram=True, streamed_weight_bytes_per_timestep=1))
    layers = {l.name: l for l in (a, b, c)}
    prog = NS(hardware=_hw_widths(), input=NS(encoding="spikes", shape=(3, 5), bits=8), layer=layers.__getitem__)
    ref = _ref(A=1, B=1, C=1)

    def kinds(layer, program=prog):
        return {k: np.broadcast_to(v, (1, 2)).tolist() for k, v in _traffic(program, layer, ref).items()}

    # a binary spike frame of 15 inputs is 2 B; streamed weights: synops x 0.5 B, at most 3 B
    assert kinds(a) == {"input_frame:glb_read": [[2, 2]], "spike_map_write:glb_write": [[3, 3]],
                        "weights:glb_read": [[2.5, 0.5]]}
    # A's bitmap read from the GLB, B's own written to DRAM, 10 B of state loaded and stored
    assert kinds(b) == {"spike_map_read:glb_read": [[3, 3]], "spike_map_write:dram": [[2, 2]],
                        "state_spill:glb_read": [[5, 5]], "state_spill:glb_write": [[5, 5]]}
    # the integrator writes no bitmap; state and weights in DRAM (at most 1 B of weights per step)
    assert kinds(c) == {"spike_map_read:dram": [[2, 2]], "state_spill:dram": [[4, 4]], "weights:dram": [[1, 0.5]]}
    seq = NS(hardware=_hw_widths(), input=NS(encoding="sequence", shape=(3, 5), bits=8), layer=layers.__getitem__)
    assert kinds(a, seq)["input_frame:dram"] == [[15, 15]]  # an 8-bit frame of 15 inputs from DRAM
    direct = NS(hardware=_hw_widths(), input=NS(encoding="direct", shape=(3, 5), bits=8), layer=layers.__getitem__)
    assert kinds(a, direct)["input_frame:glb_read"] == [[15, 15]]


# ---------------------------------------------------------------------------- hwsim/engine.py
def _two():
    from test_hwsim_hand import _program

    return _program()


@pytest.mark.parametrize("T", [0, 2.5, "3"])
def test_T_must_be_a_positive_integer(T):
    from atsnn.hwsim.engine import check_T

    with pytest.raises(SimulationInputError) as e:
        check_T(T)
    assert str(e.value) == f"T must be an integer >= 1, not {T!r}"


def test_trace_records_have_the_documented_fields_and_types():
    from atsnn.hwsim.engine import LAYER_FIELDS, simulate

    p = _two()
    tr = simulate(p, np.array([[1, 2]]), T=2, already_quantized=True)
    assert tr.u.dtype == np.int64 and tr.u.shape == (1, 2, 2)
    for name, rec in tr.layers.items():
        assert set(rec) == set(LAYER_FIELDS) | {f"energy_{c}" for c in COMPONENTS if c != "leakage"}, name
        for f in LAYER_FIELDS:  # counts are int64, bytes float64 (results.md)
            assert rec[f].dtype == (np.float64 if f.endswith("_bytes") else np.int64), (name, f)
            assert rec[f].shape == (1, 2)
    # h's compute cycles by hand (test_hwsim_hand): 6 at t = 1; at t = 2 the input is the same and the
    # soft-reset membrane [1, 2] does not change the events: 6 again -> busy_norm sums them
    assert tr.layers["h"]["compute_cycles"].tolist() == [[6, 6]]
    assert tr.busy_norm["h"] == 12.0


def test_a_run_that_does_not_fit_in_memory_is_refused_before_allocating(monkeypatch):
    from atsnn.hwsim.engine import simulate

    p = _two()
    # records: 2 layers x (11 counters + 6 dynamic energies) + 2 classes, 8 B each, per sample and timestep,
    # twice over for the evaluation: 2 x 8 x 1 x 3 x (2 x 17 + 2) = 1728 B
    monkeypatch.setattr("atsnn.hwsim.memory.available_memory_bytes", lambda: 1728)
    simulate(p, np.array([[1, 2]]), T=3, already_quantized=True)
    monkeypatch.setattr("atsnn.hwsim.memory.available_memory_bytes", lambda: 1727)
    with pytest.raises(SimulationInputError) as e:
        simulate(p, np.array([[1, 2]]), T=3, already_quantized=True)
    assert str(e.value) == ("program 'two': 1 samples x T=3 need about 0 MiB of records, 0 MiB available; "
                            "use --samples 1 or fewer, or a smaller --T")


def test_the_cost_table_and_dram_choice_are_the_ones_asked_for():
    from atsnn.hwsim.engine import simulate

    p = _two()
    x = np.array([[1, 2]])
    tr = simulate(p, x, T=1, already_quantized=True, costs="horowitz45")
    assert tr.costs.name == "horowitz45"
    # the input (2 pixels x 8 bits = 2 B) is loaded from DRAM: 16 bits x 70 pJ (ddr3) or x 8 pJ (lpddr4)
    tr = simulate(p, x, T=1, already_quantized=True, costs="sata28-500mhz", dram="ddr3")
    assert (tr.costs.name, tr.costs.dram) == ("sata28-500mhz", "ddr3")
    assert tr.input_load_energy_pj == pytest.approx(16 * 70.0)
    tr = simulate(p, x, T=1, already_quantized=True, costs="sata28-500mhz")
    assert tr.input_load_energy_pj == pytest.approx(16 * 8.0)


def test_simulate_hands_ilif_programs_to_the_ilif_simulator_with_every_argument(monkeypatch):
    from test_ilif import _hand_program

    from atsnn.hwsim.engine import simulate

    seen = {}

    def fake(*args, **kwargs):
        seen["args"], seen["kwargs"] = args, kwargs
        return "trace"

    monkeypatch.setattr("atsnn.hwsim.ilif.simulate_ilif", fake)
    p = _hand_program(T=2)
    x, labels = np.array([[1, 2]]), np.array([1])
    assert simulate(p, x, labels, T=2, costs="horowitz45", dram="ddr3-horowitz", batch_size=3, progress=True,
                    already_quantized=True) == "trace"
    assert seen["args"][0] is p and seen["args"][1] is x and seen["args"][2] is labels
    assert seen["kwargs"] == dict(T=2, costs="horowitz45", dram="ddr3-horowitz", batch_size=3, progress=True,
                                  already_quantized=True)


def test_simulate_shows_no_progress_bar_unless_asked(capfd):
    from atsnn.hwsim.engine import simulate

    # (the bar itself is not tested here: tqdm hangs in the forked workers of a mutation run)
    simulate(_two(), np.array([[1, 2]]), T=1, already_quantized=True)
    assert capfd.readouterr().err == ""


def test_a_binary_spike_frame_is_read_as_one_bit_per_input():
    from atsnn.config import load_hardware
    from atsnn.program import AtParams, InputSpec, Layer, Program, Synapse
    from atsnn.compiler.mapping import map_program_layers
    from atsnn.hwsim.engine import simulate
    from atsnn.hwsim.reference import exp_constants

    hw = load_hardware("atsnn28-small")
    h = Layer(name="h", neuron="if", shape=(2,), bias=np.zeros(2, int), threshold=4, v_init=np.zeros(2, int),
              synapses=[Synapse(source="input", op="dense", weight=np.ones((2, 9), dtype=int), input_shape=(9,),
                                max_input=1)])
    o = Layer(name="o", neuron="integrator", shape=(2,), bias=np.zeros(2, int), threshold=0, v_init=np.zeros(2, int),
              synapses=[Synapse(source="h", op="dense", weight=np.eye(2, dtype=int), input_shape=(2,))])
    early = map_program_layers([h, o], "o", hw)
    m, d = exp_constants(hw, 1.0)
    p = Program(name="spk", hardware=hw, input=InputSpec(shape=(9,), scale=1.0, encoding="spikes"), layers=[h, o],
                output="o", early_exit=early, at=AtParams(exp_mult=m, d_clip=d))
    x = np.zeros((1, 2, 9), dtype=np.int64)
    x[0, 0, :3] = 1
    tr = simulate(p, x, T=2, already_quantized=True)
    # per timestep h reads the 9-input frame as ceil(9 x 1 / 8) = 2 B and writes its 2-bit map as 1 B
    assert tr.layers["h"]["glb_bytes"].tolist() == [[3.0, 3.0]]
    from atsnn.hwsim.engine import input_frame_bytes

    assert input_frame_bytes(p) == 2
    assert input_frame_bytes(_two()) == 2  # two 8-bit pixels


def test_accumulator_outside_the_float32_exact_range_is_refused():
    from atsnn.hwsim.engine import StepCounters
    from atsnn.hwsim.ops import EXACT_LIMIT

    layer = NS(neurons=3, mapping=NS(chunk_sizes=[2, 1]))
    sc = StepCounters(2, layer)
    z = sc.checked_acc("h")  # no synapse added yet: zeros of (B, neurons)
    assert z.shape == (2, 3) and z.dtype == np.float32 and not z.any()
    for edge in (EXACT_LIMIT - 1, -(EXACT_LIMIT - 1)):
        sc.acc = np.array([[edge, 0, 0], [0, 0, 0]], dtype=np.float32)
        assert sc.checked_acc("h")[0, 0] == edge
    for over in (EXACT_LIMIT, -EXACT_LIMIT):
        sc.acc = np.array([[0, over, 0], [0, 0, 0]], dtype=np.float32)
        with pytest.raises(SimulationInputError) as e:
            sc.checked_acc("h")
        assert str(e.value) == ("layer 'h': accumulator exceeds the exact range; the program violates the "
                                "accumulator bound (recompile)")


def test_three_synapses_add_up_in_the_accumulator_every_timestep():
    from atsnn.config import load_hardware
    from atsnn.program import AtParams, InputSpec, Layer, Program, Synapse
    from atsnn.compiler.mapping import map_program_layers
    from atsnn.hwsim.engine import simulate
    from atsnn.hwsim.reference import exp_constants

    hw = load_hardware("atsnn28-small")
    ws = [np.array([[1, 0], [0, 1]]), np.array([[2, 0], [0, 0]]), np.array([[0, 0], [0, 3]])]
    o = Layer(name="o", neuron="integrator", shape=(2,), bias=np.zeros(2, int), threshold=0, v_init=np.zeros(2, int),
              synapses=[Synapse(source="input", op="dense", weight=w, input_shape=(2,), max_input=255) for w in ws])
    early = map_program_layers([o], "o", hw)
    m, d = exp_constants(hw, 1.0)
    p = Program(name="three", hardware=hw, input=InputSpec(shape=(2,), scale=1.0), layers=[o], output="o",
                early_exit=early, at=AtParams(exp_mult=m, d_clip=d))
    tr = simulate(p, np.array([[1, 2]]), T=3, already_quantized=True)
    # a = W1 x + W2 x + W3 x = [1, 2] + [2, 0] + [0, 6] = [3, 8] each timestep; u integrates it
    assert tr.u[0].tolist() == [[3, 8], [6, 16], [9, 24]]
    # each synapse reads the 2-pixel, 8-bit frame (2 B) from the GLB; the integrator writes no spike map
    assert tr.layers["o"]["glb_bytes"].tolist() == [[6.0, 6.0, 6.0]]
    assert tr.layers["o"]["dram_bytes"].tolist() == [[0.0, 0.0, 0.0]]
    # a sequence frame comes from DRAM instead, once per synapse
    from dataclasses import replace

    seq = replace(p, input=InputSpec(shape=(2,), scale=1.0, encoding="sequence"))
    tr = simulate(seq, np.array([[[1, 2], [1, 2], [1, 2]]]), T=3, already_quantized=True)
    assert tr.u[0].tolist() == [[3, 8], [6, 16], [9, 24]]
    assert tr.layers["o"]["dram_bytes"].tolist() == [[6.0, 6.0, 6.0]]
    assert tr.layers["o"]["glb_bytes"].tolist() == [[0.0, 0.0, 0.0]]


# ---------------------------------------------------------------------------- hwsim/reference.py (golden model)
def _small_hw():
    from atsnn.config import load_hardware

    return load_hardware("atsnn28-small")  # 16-bit membrane, 24-bit AT membrane, 64-entry Q1.15 exp table


def test_leak_and_current_shift_by_hand():
    from atsnn.hwsim.reference import leak, shifted_current

    v = np.array([-7, 7, 8, -8, 0])
    # v - (v >> 2) with the arithmetic shift rounding toward minus infinity: -7 >> 2 = -2
    assert leak(v, 2).tolist() == [-5, 6, 6, -6, 0]
    same = leak(v, 0)
    assert same.tolist() == v.tolist() and same is not v and same.dtype == np.int64
    # (a + 2**(c-1)) >> c: round to nearest, ties up (1.5 -> 2, -1.5 -> -1)
    assert shifted_current(np.array([5, 6, 7, -6, -7]), 2).tolist() == [1, 2, 2, -1, -2]
    assert shifted_current(np.array([3, -3]), 1).tolist() == [2, -1]
    assert shifted_current(np.array([3, -3]), 0).tolist() == [3, -3]


def test_pe_neuron_update_by_hand():
    from atsnn.hwsim.reference import neuron_update

    kw = dict(leak_shift=0, reset="subtract", v_reset=0, comparator=">=", vmin=-32768, vmax=32767)
    v, acc = np.array([10, 0, 32000, -32000]), np.array([5, 7, 10000, -10000])
    # s = v + a + 1 = [16, 8, 42001, -41999] -> clamp [16, 8, 32767, -32768], saturating up and down
    vn, z, hi, lo = neuron_update(v, acc, 1, threshold=8, **kw)
    assert vn.tolist() == [8, 0, 32759, -32768] and z.tolist() == [1, 1, 1, 0]
    assert hi.tolist() == [False, False, True, False] and lo.tolist() == [False, False, False, True]
    assert vn.dtype == np.int64 and z.dtype == np.uint8
    vn, z, _, _ = neuron_update(v, acc, 1, threshold=8, **{**kw, "comparator": ">"})  # 8 > 8 is false
    assert vn.tolist() == [8, 8, 32759, -32768] and z.tolist() == [1, 0, 1, 0]
    vn, z, _, _ = neuron_update(v, acc, 1, threshold=8, **{**kw, "reset": "to_value", "v_reset": -3})
    assert vn.tolist() == [-3, -3, -3, -32768]
    vn, z, _, _ = neuron_update(v, acc, 1, threshold=np.array([20, 7, 100, 1]), **kw)  # one threshold per neuron
    assert vn.tolist() == [16, 1, 32667, -32768] and z.tolist() == [0, 1, 1, 0]
    # leak k = 1: 10 - 5 = 5, -10 - (-5) = -5; current shift 2: (6 + 2) >> 2 = 2
    vn, _, _, _ = neuron_update(np.array([10, -10]), np.array([0, 0]), 0, threshold=100, **{**kw, "leak_shift": 1})
    assert vn.tolist() == [5, -5]
    vn, _, _, _ = neuron_update(np.array([0]), np.array([6]), 0, threshold=100, current_shift=2, **kw)
    assert vn.tolist() == [2]


def test_output_integrator_by_hand():
    from atsnn.hwsim.reference import integrator_update

    lim = dict(umin=-(1 << 23), umax=(1 << 23) - 1)
    u, hi, lo = integrator_update(np.array([100, -100]), np.array([10, -10]), np.array([1, 1]), leak_shift=2, **lim)
    assert u.tolist() == [86, -84] and not hi.any() and not lo.any()  # 100 - 25 + 10 + 1, -100 + 25 - 10 + 1
    u, hi, lo = integrator_update(np.array([8388000, -8388000]), np.array([1000, -1000]), 0, leak_shift=0, **lim)
    assert u.tolist() == [8388607, -8388608] and hi.tolist() == [True, False] and lo.tolist() == [False, True]
    assert u.dtype == np.int64


def test_exp_table_and_constants_by_hand():
    from atsnn.hwsim.reference import exp_constants, exp_table

    hw = _small_hw()
    t = exp_table(hw)  # round(exp(-j * 12 / 63) * 32768)
    assert t.dtype == np.int64 and len(t) == 64
    assert t[:8].tolist() == [32768, 27085, 22387, 18505, 15295, 12643, 10450, 8638]
    assert t[52:].tolist() == [2, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    # exp_mult = round(s_out * logit_scale * 63 / 12 * 2**24), d_clip = ceil(63 * 2**24 / exp_mult)
    assert exp_constants(hw, 1.0) == (88080384, 12)
    assert exp_constants(hw, 0.5, 2.0) == (88080384, 12)
    assert exp_constants(hw, 0.1) == (8808038, 121)  # 63 * 2**24 / 8808038 = 120.0000054
    with pytest.raises(ValueError) as e:
        exp_constants(hw, 1e-9)
    assert str(e.value) == "output scale too small for the exp-table index multiplier"
    # exp_mult = 1 is the smallest allowed: d_clip = 63 * 2**24
    assert exp_constants(hw, 1 / (5.25 * 2 ** 24)) == (1, 63 * 2 ** 24)


def test_at_sigma_confidence_and_exit_by_hand():
    from atsnn.hwsim.reference import at_exit, at_sigma, cl_sequence, exp_table

    hw = _small_hw()
    u = np.array([[10, 10, 9, 0, -2, -5], [0, 5, 5, 5, 5, 5]])
    sig, win = at_sigma(u, exp_table(hw), exp_mult=88080384, d_clip=12, hw=hw)
    # d = m - u clipped to 12; idx = d * 88080384 >> 16 = 1344 d; j = idx >> 8, f = idx & 255:
    # d = 1: j = 5, f = 64: 12643 - ((12643 - 10450) * 64 >> 8) = 12095; d = 10: j = 52, f = 128: 2 - 0 = 2;
    # d = 12: j = 63 >= E - 1: 0; d = 5: j = 26, f = 64: 232 - ((232 - 191) * 64 >> 8) = 222
    assert sig.tolist() == [[32768, 32768, 12095, 2, 0, 0], [222, 32768, 32768, 32768, 32768, 32768]]
    assert win.tolist() == [0, 1]  # lowest index on ties
    assert sig.dtype == np.int64
    # CL_1 = round(0.5 * 2**16), tau_q = round(0.75 * 2**16) = 49152, CL_{t+1} = CL_t * tau_q >> 16
    assert cl_sequence(0.5, 0.75, 4, hw).tolist() == [32768, 24576, 18432, 13824]
    assert cl_sequence(0.999, 0.999, 2, hw).tolist() == [65470, (65470 * 65470) >> 16]
    # exit when ONE * 2**Q = 2**31 > CL_t * S, strictly
    assert at_exit(np.array([32767, 32768, 32769]), 65536, hw).tolist() == [True, False, False]
    s = int(sig[0].sum())  # 77633
    assert at_exit(s, 65536, hw) == False and at_exit(s, 16384, hw) == True  # noqa: E712


# ---------------------------------------------------------------------------- hwsim/tables.py
def _conv_syn(op, input_shape, kernel, stride=(1, 1), padding=(0, 0)):
    return NS(op=op, input_shape=input_shape, stride=stride, padding=padding, weight=np.zeros((1, 1) + kernel))


def test_outputs_an_input_event_reaches_by_hand():
    from atsnn.hwsim.tables import _reached_outputs

    # conv: output (oy, ox) reads input (oy*s - p + ky, ox*s - p + kx); taps in (ky, kx) row-major order
    syn = _conv_syn("conv2d", (1, 3, 3), (3, 3), padding=(1, 1))
    layer = NS(shape=(1, 3, 3))
    q = _reached_outputs(syn, layer, np.array([0, 4]))
    assert q.tolist() == [[4, 3, -1, 1, 0, -1, -1, -1, -1], [8, 7, 6, 5, 4, 3, 2, 1, 0]]
    # a 1x3 kernel with padding (0, 1): input (0, 0) reaches outputs (0, 1) and (0, 0)
    q = _reached_outputs(_conv_syn("conv2d", (1, 2, 3), (1, 3), padding=(0, 1)), NS(shape=(1, 2, 3)), np.array([0]))
    assert q.tolist() == [[1, 0, -1]]
    # stride 2, 2x2 kernel: only taps with an even offset reach an output
    q = _reached_outputs(_conv_syn("conv2d", (1, 4, 4), (2, 2), stride=(2, 2)), NS(shape=(1, 2, 2)),
                         np.array([5, 11]))
    assert q.tolist() == [[-1, -1, -1, 0], [-1, 3, -1, -1]]
    # transposed conv: input (iy, ix) writes output (iy*s - p + ky, ix*s - p + kx)
    q = _reached_outputs(_conv_syn("conv_transpose2d", (1, 2, 2), (3, 3), stride=(2, 2), padding=(1, 1)),
                         NS(shape=(1, 3, 3)), np.array([0, 3]))
    assert q.tolist() == [[-1, -1, -1, -1, 0, 1, -1, 3, 4], [4, 5, -1, 7, 8, -1, -1, -1, -1]]


def test_pass_sizes_and_dense_statistics_by_hand():
    from atsnn.hwsim.tables import pass_max_sizes, synapse_stats

    # PE chunks of 5 and 4 neurons in 2 passes: PE 0 holds 3 + 2, PE 1 holds 2 + 2
    layer = NS(neurons=9, mapping=NS(chunk_sizes=[5, 4], passes=2))
    assert pass_max_sizes(layer) == [3, 2]
    st = synapse_stats(layer, NS(op="dense"))
    assert (st.fanout, st.maxconn, st.maxconn_any, st.reached) == (9.0, [3.0, 2.0], [1.0, 1.0], [2.0, 2.0])
    assert st.sampled is False and st.positions_used == 1
    # two one-neuron PEs in 2 passes: the second pass is empty
    st = synapse_stats(NS(neurons=2, mapping=NS(chunk_sizes=[1, 1], passes=2)), NS(op="dense"))
    assert (st.maxconn, st.maxconn_any, st.reached) == ([1.0, 0.0], [1.0, 0.0], [2.0, 0.0])


def test_conv_statistics_by_hand():
    from atsnn.hwsim.tables import synapse_stats

    # 1x3 kernel, padding (0, 1) on a 2x3 input, one PE: the 6 positions reach 2, 3, 2 outputs per row
    syn = _conv_syn("conv2d", (1, 2, 3), (1, 3), padding=(0, 1))
    layer = NS(neurons=6, shape=(1, 2, 3), mapping=NS(chunk_sizes=[6], passes=1))
    st = synapse_stats(layer, syn, max_positions=6)  # exactly max_positions positions: not sampled
    assert st.sampled is False and st.positions_used == 6
    assert st.fanout == pytest.approx(14 / 6) and st.maxconn == pytest.approx([14 / 6])
    assert st.maxconn_any == [1.0] and st.reached == [1.0]


def test_statistics_over_several_position_batches_and_uneven_passes_by_hand():
    from atsnn.hwsim.tables import synapse_stats

    # a 1x1 conv on a 1x65 input (two batches of positions): event at position i reaches neuron i only.
    # PE chunks [33, 32] in 2 passes: PE 0 holds 17 + 16 neurons, PE 1 16 + 16; so positions 0..16 and
    # 33..48 reach pass 0 (33 of 65), positions 17..32 and 49..64 pass 1 (32 of 65)
    syn = _conv_syn("conv2d", (1, 1, 65), (1, 1))
    layer = NS(neurons=65, shape=(1, 1, 65), mapping=NS(chunk_sizes=[33, 32], passes=2))
    st = synapse_stats(layer, syn)
    assert st.sampled is False and st.positions_used == 65 and st.fanout == 1.0
    for got in (st.maxconn, st.maxconn_any, st.reached):
        assert got == pytest.approx([33 / 65, 32 / 65])
    # two output channels on a 9x8 input (72 positions): each event reaches one neuron per channel, channel c
    # being PE c; one pass
    syn = NS(op="conv2d", input_shape=(1, 9, 8), stride=(1, 1), padding=(0, 0), weight=np.zeros((2, 1, 1, 1)))
    layer = NS(neurons=144, shape=(2, 9, 8), mapping=NS(chunk_sizes=[72, 72], passes=1))
    st = synapse_stats(layer, syn)
    assert (st.fanout, st.maxconn, st.maxconn_any, st.reached) == (2.0, [1.0], [1.0], [2.0])


def test_tap_pairs_and_pass_ranges_by_hand():
    from atsnn.hwsim.tables import _tap_pairs, pass_ranges

    # conv, padding 1: output o reads input o - 1 + tap
    assert [a.tolist() for a in _tap_pairs(3, 3, 1, 1, 0, False)] == [[0, 1], [1, 2]]
    assert [a.tolist() for a in _tap_pairs(3, 3, 1, 1, 2, False)] == [[1, 2], [0, 1]]
    # transposed, stride 2, padding 1: input i writes output 2i - 1 + tap (outputs 0..2)
    assert [a.tolist() for a in _tap_pairs(2, 3, 2, 1, 2, True)] == [[0], [1]]
    assert [a.tolist() for a in _tap_pairs(2, 3, 2, 1, 0, True)] == [[1], [1]]
    r = pass_ranges(NS(mapping=NS(chunk_sizes=[5, 4], passes=2)))
    assert [(a.tolist(), b.tolist()) for a, b in r] == [([0, 5], [3, 7]), ([3, 7], [5, 9])]


def test_layer_tables_by_hand(monkeypatch):
    from atsnn.hwsim.tables import _table_bytes, build_layer_table

    dense = NS(name="d", shape=(9,), synapses=[NS(op="dense")], mapping=NS(unit="pe", chunk_sizes=[5, 4], passes=2))
    t = build_layer_table(dense)
    st = t.synapses[0]
    assert st.positional is False and t.unit == "pe"
    assert [c.tolist() for c in st.conn] == [[[3], [2]], [[2], [2]]]  # neurons per PE slice, pass by pass
    assert [m.tolist() for m in st.maxconn] == [[3], [2]] and [r.tolist() for r in st.reached] == [[2], [2]]
    assert st.fanout.tolist() == [9]
    assert _table_bytes(t) == 2 * 2 * 2 * 8  # two (2, 1) int64 arrays, counted twice
    conv = NS(name="h", shape=(1, 2, 3), mapping=NS(unit="pe", chunk_sizes=[6], passes=1),
              synapses=[_conv_syn("conv2d", (1, 2, 3), (1, 3), padding=(0, 1))])
    st = build_layer_table(conv).synapses[0]
    assert st.positional is True and st.conn[0].dtype == np.int64
    assert st.conn[0].tolist() == [[2, 3, 2, 2, 3, 2]]  # outputs each input position reaches
    # entries = passes x PEs x input positions = 1 x 1 x 6: exactly at the limit is allowed
    monkeypatch.setattr("atsnn.hwsim.tables.MAX_TABLE_ENTRIES", 6)
    build_layer_table(conv)
    monkeypatch.setattr("atsnn.hwsim.tables.MAX_TABLE_ENTRIES", 5)
    with pytest.raises(SimulationInputError) as e:
        build_layer_table(conv)
    assert str(e.value) == "layer 'h' is too large for the exact simulator (6 table entries); use the analytic mode"


def test_statistics_with_three_uneven_passes_and_sampled_positions_by_hand():
    from atsnn.hwsim.tables import synapse_stats

    # 1x1 conv on a 1x12 input; PE chunks [8, 4] in 3 passes: PE 0 holds 3 + 3 + 2 neurons, PE 1 2 + 1 + 1.
    # Pass 0 is reached from positions 0-2 and 8-9, pass 1 from 3-5 and 10, pass 2 from 6-7 and 11
    syn = _conv_syn("conv2d", (1, 1, 12), (1, 1))
    layer = NS(neurons=12, shape=(1, 1, 12), mapping=NS(chunk_sizes=[8, 4], passes=3))
    st = synapse_stats(layer, syn)
    for got in (st.maxconn, st.maxconn_any, st.reached):
        assert got == pytest.approx([5 / 12, 4 / 12, 3 / 12])
    # sampled: 3 of the 7 positions of a 1x3-kernel conv (padding 1) on a 1x7 input, evenly spaced:
    # round(linspace(0, 6, 3)) = positions 0, 3, 6, which reach 2, 3 and 2 outputs
    syn = _conv_syn("conv2d", (1, 1, 7), (1, 3), padding=(0, 1))
    layer = NS(neurons=7, shape=(1, 1, 7), mapping=NS(chunk_sizes=[7], passes=1))
    st = synapse_stats(layer, syn, max_positions=3)
    assert st.sampled is True and st.positions_used == 3
    assert st.fanout == pytest.approx(7 / 3)


def test_reference_convolutions_and_pooling_by_hand():
    from atsnn.hwsim.reference import _ref_conv, _ref_conv_transpose, _ref_pool

    x = np.array([[[[1, 2], [3, 4]]]])
    w = np.array([[[[1, 10], [100, 1000]]]])
    # transposed, stride (2, 3): input (iy, ix) adds x * w[ky, kx] at (2 iy + ky, 3 ix + kx) of a 5 x 7 canvas
    # ((h-1) s + k + output_padding); padding (1, 0) crops one row each side: 3 x 7
    got = _ref_conv_transpose(x, w, (2, 3), (1, 0), (1, 2))
    assert got.tolist() == [[[[100, 1000, 0, 200, 2000, 0, 0], [3, 30, 0, 4, 40, 0, 0],
                              [300, 3000, 0, 400, 4000, 0, 0]]]]
    # conv, stride (1, 2), padding (1, 0) on 1..9: out[oy] = x[oy, 0] + 10 x[oy, 1] + 100 x[oy+1, 0] + 1000 x[oy+1, 1]
    x3 = np.arange(1, 10).reshape(1, 1, 3, 3)
    assert _ref_conv(x3, w, (1, 2), (1, 0)).tolist() == [[[[2100], [5421], [8754], [87]]]]
    # sum pooling
    x4 = np.arange(16).reshape(1, 1, 4, 4)
    assert _ref_pool(x4, NS(kernel=(2, 2), stride=(2, 2), padding=(0, 0))).tolist() == [[[[10, 18], [42, 50]]]]
    got = _ref_pool(x4, NS(kernel=(1, 2), stride=(1, 2), padding=(1, 0)))
    assert got.tolist() == [[[[0, 0], [1, 5], [9, 13], [17, 21], [25, 29], [0, 0]]]]


def test_reference_reach_and_pass_ranges_by_hand():
    from atsnn.hwsim.reference import _ref_pass_ranges, _ref_reach

    conv = _conv_syn("conv2d", (1, 3, 3), (3, 3), padding=(1, 1))
    # input (0, 0) reaches outputs (0, 0), (0, 1), (1, 0), (1, 1) of both output channels
    assert _ref_reach(conv, (2, 3, 3), 0).tolist() == [0, 1, 3, 4, 9, 10, 12, 13]
    assert _ref_reach(NS(op="dense"), (2, 3), 0).tolist() == list(range(6))
    tconv = _conv_syn("conv_transpose2d", (1, 2, 2), (3, 3), stride=(2, 2), padding=(1, 1))
    assert _ref_reach(tconv, (1, 3, 3), 0).tolist() == [0, 1, 3, 4]
    assert _ref_reach(tconv, (1, 3, 3), 3).tolist() == [4, 5, 7, 8]
    strided = _conv_syn("conv2d", (1, 4, 4), (2, 2), stride=(2, 2))
    assert _ref_reach(strided, (1, 2, 2), 11).tolist() == [3]
    assert _ref_pass_ranges(NS(mapping=NS(chunk_sizes=[5, 4], passes=2))) == [[(0, 3), (5, 7)], [(3, 5), (7, 9)]]


def test_statistics_when_the_last_position_reaches_nothing():
    from atsnn.hwsim.tables import synapse_stats

    # 1x1 conv, stride 2, on a 1x4 input: positions 0 and 2 reach outputs 0 and 1, positions 1 and 3 none
    syn = _conv_syn("conv2d", (1, 1, 4), (1, 1), stride=(1, 2))
    layer = NS(neurons=2, shape=(1, 1, 2), mapping=NS(chunk_sizes=[2], passes=1))
    st = synapse_stats(layer, syn)
    assert (st.fanout, st.maxconn, st.maxconn_any, st.reached) == (0.5, [0.5], [0.5], [0.5])


def test_accounting_matrix_by_hand():
    from atsnn.hwsim.tables import build_layer_table

    dense = NS(name="d", shape=(9,), synapses=[NS(op="dense")], mapping=NS(unit="pe", chunk_sizes=[5, 4], passes=2))
    st = build_layer_table(dense).synapses[0]
    # event 1 cycle, synop 2 cycles. Per event: synops = fanout 9; lockstep cycles = sum over passes of
    # (event + synop x max per PE) = (1 + 6) + (1 + 4); deliveries = PEs reached, 2 + 2.
    counts, busy = st.accounting_matrix(1, 2)
    assert counts.tolist() == [[9.0, 12.0, 4.0]]
    # busy per PE: PE 0 (1 + 2 x 3) + (1 + 2 x 2) = 12, PE 1 (1 + 2 x 2) twice = 10
    assert busy.tolist() == [[12.0, 10.0]]
    counts, busy = st.accounting_matrix(3, 1)  # other cycle costs: recomputed, not the cached matrices
    assert counts.tolist() == [[9.0, 3 + 3 + 3 + 2, 4.0]] and busy.tolist() == [[3 + 3 + 3 + 2, 3 + 2 + 3 + 2]]


def test_table_cache_keeps_the_newest_table_within_its_byte_limit(monkeypatch):
    from atsnn.hwsim import tables

    def layer(name, chunks):
        syn = NS(op="dense", input_shape=(4,), stride=(1, 1), padding=(0, 0), weight=np.zeros((sum(chunks), 4)))
        return NS(name=name, shape=(sum(chunks),), synapses=[syn], mapping=NS(unit="pe", chunk_sizes=chunks, passes=2))

    a, b = layer("a", [5, 4]), layer("b", [3, 3])
    one = tables._table_bytes(tables.build_layer_table(a))  # 2 x 2 passes x (2, 1) int64 = 64 B
    assert one == tables._table_bytes(tables.build_layer_table(b)) == 64
    monkeypatch.setattr(tables, "_TABLE_CACHE", tables.OrderedDict())
    monkeypatch.setattr(tables, "TABLE_CACHE_MAX_BYTES", one)  # exactly one table fits
    tables.build_tables(NS(layers=[a]))
    assert list(tables._TABLE_CACHE) == [tables.table_key(a)]
    tables.build_tables(NS(layers=[b]))  # the least recently used one goes
    assert list(tables._TABLE_CACHE) == [tables.table_key(b)]


def test_an_event_that_reaches_no_neuron_of_a_pass_costs_nothing():
    from atsnn.hwsim.tables import build_layer_table

    # 1x1 conv, stride 2, on a 1x4 input: positions 1 and 3 reach no output (contract sec. 6: filtered at the bus)
    layer = NS(name="s", shape=(1, 1, 2), mapping=NS(unit="pe", chunk_sizes=[2], passes=1),
               synapses=[_conv_syn("conv2d", (1, 1, 4), (1, 1), stride=(1, 2))])
    counts, busy = build_layer_table(layer).synapses[0].accounting_matrix(1, 2)
    assert counts.tolist() == [[1.0, 3.0, 1.0], [0.0, 0.0, 0.0], [1.0, 3.0, 1.0], [0.0, 0.0, 0.0]]
    assert busy.tolist() == [[3.0], [0.0], [3.0], [0.0]]


def test_reference_edges_by_hand():
    from atsnn.hwsim.reference import _ref_conv_transpose, _ref_pool, _ref_reach, cl_sequence, integrator_update, \
        neuron_update

    x = np.array([[[[1, 2], [3, 4]]]])
    w = np.array([[[[1, 10], [100, 1000]]]])
    # transposed, stride (2, 1), padding (0, 1), output padding (1, 0): a 5 x 3 canvas, columns 1..1 kept
    assert _ref_conv_transpose(x, w, (2, 1), (0, 1), (1, 0)).tolist() == [[[[12], [1200], [34], [3400], [0]]]]
    # stride 1: the full 3 x 3 correlation of the two 2 x 2 arrays
    assert _ref_conv_transpose(x, w, (1, 1), (0, 0), (0, 0)).tolist() == [[[[1, 12, 20], [103, 1234, 2040],
                                                                            [300, 3400, 4000]]]]
    # 2 x 2 sum pooling with stride 1 on 0..8
    x3 = np.arange(9).reshape(1, 1, 3, 3)
    assert _ref_pool(x3, NS(kernel=(2, 2), stride=(1, 1), padding=(0, 0))).tolist() == [[[[8, 12], [20, 24]]]]
    # a 1 x 3 kernel (padding (0, 1)) on a 2 x 3 input: input (1, 0) reaches outputs (1, 0) and (1, 1) only
    assert _ref_reach(_conv_syn("conv2d", (1, 2, 3), (1, 3), padding=(0, 1)), (1, 2, 3), 3).tolist() == [3, 4]
    assert cl_sequence(0.5, 0.75, 2, _small_hw()).dtype == np.int64
    # saturation counts only values beyond the range: exactly at the limit is not a clamp
    kw = dict(threshold=32767, leak_shift=0, reset="subtract", v_reset=0, comparator=">", vmin=-32768, vmax=32767)
    _, _, hi, lo = neuron_update(np.array([32766, -32767]), np.array([1, -1]), 0, **kw)
    assert hi.tolist() == [False, False] and lo.tolist() == [False, False]
    u, hi, lo = integrator_update(np.array([10, -10]), np.array([-3, 2]), 0, leak_shift=0, umin=-8, umax=7)
    assert u.tolist() == [7, -8] and hi.tolist() == [False, False] and lo.tolist() == [False, False]


def test_at_sigma_table_end_fraction_and_batched_winner_by_hand():
    from atsnn.hwsim.reference import at_sigma, exp_table

    hw = _small_hw()  # E = 64, F = 8, exp_scale_bits = 16
    table = np.arange(64, 0, -1)  # T[j] = 64 - j: a table whose tail is not flat
    # exp_mult = 2**24: idx = d << 8, so j = d and f = 0: sigma = T[d] below j = E - 1 = 63, else 0
    u = np.array([100, 39, 38, 37, 30])  # d = 0, 61, 62, 63, 70
    sig, _ = at_sigma(u, table, exp_mult=1 << 24, d_clip=1000, hw=hw)
    assert sig.tolist() == [64, 3, 2, 0, 0]
    # an odd fraction: exp_mult = 344064 = 5.25 x 2**16, d = 1: idx = 5, j = 0, f = 5:
    # 32768 - ((32768 - 27085) x 5 >> 8) = 32768 - 110
    sig, _ = at_sigma(np.array([1, 0]), exp_table(hw), exp_mult=344064, d_clip=1000, hw=hw)
    assert sig.tolist() == [32768, 32658]
    # (S, T, C) membranes: the winner is taken over the classes (last axis)
    u3 = np.array([[[0, 5, 1], [7, 0, 0]], [[1, 1, 2], [0, 3, 3]]])
    _, win = at_sigma(u3, exp_table(hw), exp_mult=88080384, d_clip=12, hw=hw)
    assert win.tolist() == [[1, 0], [2, 1]]


def test_run_batches_allocates_the_records_and_walks_the_batches():
    from atsnn.hwsim.engine import LAYER_FIELDS, run_batches

    p = _two()
    calls = []

    def run_batch(program, hw, action, tables, weights32, xq, T, u, rec, busy, busy_norm, b0, b1):
        calls.append((b0, b1, xq.shape[0], u.shape[0], weights32[("h", 0)].dtype))

    u, rec, busy, busy_norm = run_batches(p, p.hardware, None, None, np.zeros((5, 2)), 3, 2, run_batch,
                                          progress=False, desc="d", extra_fields=(("tap", np.int32),))
    assert calls == [(0, 2, 2, 2, np.float32), (2, 4, 2, 2, np.float32), (4, 5, 1, 1, np.float32)]
    assert u.shape == (5, 3, 2) and u.dtype == np.int64 and not u.any()
    for name in ("h", "o"):  # the extra field comes after the counters, zeros of its own dtype
        assert rec[name]["tap"].dtype == np.int32 and rec[name]["tap"].shape == (5, 3) and not rec[name]["tap"].any()
        assert list(rec[name])[len(LAYER_FIELDS)] == "tap"
        assert busy_norm[name] == 0.0


# ---------------------------------------------------------------------------- compiler/nir_import.py helpers
def test_nir_import_array_pair_and_finite_checks():
    from atsnn.compiler.nir_import import NirImportError, _arr, _check_finite, _pair

    assert _arr([1, 2]).dtype == np.float64
    assert _pair(3, "stride", "c1") == (3, 3) and _pair([2, 5], "stride", "c1") == (2, 5)
    assert _pair(np.array([2.0, 5.0]), "stride", "c1") == (2, 5)
    with pytest.raises(NirImportError) as e:
        _pair([1, 2, 3], "stride", "c1")
    assert str(e.value) == "node 'c1': stride must be an int or a pair, not [1, 2, 3]"
    assert _check_finite("n", "bias", [1, 2]).tolist() == [1.0, 2.0]
    for bad, word in ((np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")):
        with pytest.raises(NirImportError) as e:
            _check_finite("n", "bias", [1.0, bad])
        assert str(e.value) == f"node 'n': bias contains {word}"


def test_nir_import_per_channel_parameters():
    from atsnn.compiler.nir_import import NirImportError, _per_channel

    shape = (2, 1, 3)  # two channels of three neurons
    assert _per_channel("n", "v_threshold", 1.5, shape).tolist() == [1.5, 1.5]
    assert _per_channel("n", "v_threshold", [1.0, 2.0], shape).tolist() == [1.0, 2.0]
    assert _per_channel("n", "v_threshold", [1, 1, 1, 4, 4, 4], shape).tolist() == [1.0, 4.0]
    with pytest.raises(NirImportError) as e:
        _per_channel("n", "v_threshold", [1, 2, 3], shape)
    assert str(e.value) == "node 'n': v_threshold has 3 values, expected 1, 2 or 6 for shape (2, 1, 3)"
    with pytest.raises(NirImportError) as e:
        _per_channel("n", "v_threshold", [1, 1, 2, 4, 4, 4], shape)
    assert str(e.value) == "node 'n': v_threshold differs within a channel; the PE needs one value per channel"
    with pytest.raises(NirImportError) as e:
        _per_channel("n", "v_threshold", [1.0, np.nan], shape)
    assert str(e.value) == "node 'n': v_threshold contains NaN"


def test_nir_import_output_shapes_pytorch_semantics():
    from atsnn.compiler.nir_import import NirImportError, _pool_out, conv_out_shape

    # pooling (h + 2p - k) // s + 1 per axis
    assert _pool_out((3, 7, 9), (3, 2), (2, 3), (1, 0), "p") == (3, 4, 3)
    assert _pool_out((3, 8, 9), (3, 2), (2, 3), (1, 2), "p") == (3, 4, 4)  # (8 + 2 - 3) // 2 + 1, (9 + 4 - 2) // 3 + 1
    assert _pool_out((1, 2, 2), (2, 2), (1, 1), (0, 0), "p") == (1, 1, 1)  # exactly one output is fine
    for shape in ((1, 1, 4), (1, 4, 1)):
        with pytest.raises(NirImportError) as e:
            _pool_out(shape, (2, 2), (1, 1), (0, 0), "p")
        assert str(e.value) == f"node 'p': pooling (2, 2) on input {shape} gives an empty output"
    # conv: cout = weight[0]; transposed: cout = weight[1], (h - 1) s - 2p + k + output_padding
    assert conv_out_shape((2, 7, 9), (5, 2, 3, 2), (2, 3), (1, 0)) == (5, 4, 3)
    assert conv_out_shape((2, 3, 4), (2, 6, 3, 2), (2, 3), (1, 0), transposed=True, output_padding=(1, 2)) == (6, 6, 13)
    assert conv_out_shape((2, 3, 4), (2, 6, 3, 2), (2, 3), (1, 1), transposed=True, output_padding=(1, 2)) == (6, 6, 11)


def test_nir_import_graph_order_version_and_text():
    from atsnn.compiler.nir_import import NirImportError, _text, _toposort, _version_tuple

    assert _toposort(["c", "a", "b", "d"], [("a", "b"), ("b", "d"), ("c", "d")]) == ["a", "c", "b", "d"]
    with pytest.raises(NirImportError) as e:
        _toposort(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "b")])
    assert str(e.value) == "graph has a recurrent cycle through nodes 'b', 'c'; only feed-forward graphs are supported"
    assert _version_tuple(None) is None and _version_tuple("") is None
    assert _version_tuple("1.0.6") == (1, 0, 6) and _version_tuple("2") == (2, 0, 0)
    assert _version_tuple("1.0.6.dev2") == (1, 0, 6)  # the first three parts
    assert _version_tuple("1.10.2") == (1, 10, 2) and _version_tuple("2.dev") == (2, 0, 0)  # no digits: 0
    assert _text(b"snntorch") == "snntorch" and _text(np.array(b"norse")) == "norse" and _text(np.array("x")) == "x"
    assert _text(3) == "3"


class IF:  # stand-ins for nir.IF / nir.LIF: the importer reads the type name and r, tau
    def __init__(self, r):
        self.r = np.asarray(r, dtype=float)


class LIF:
    def __init__(self, tau, r):
        self.tau, self.r = np.asarray(tau, dtype=float), np.asarray(r, dtype=float)


def test_nir_import_dt_choice():
    from atsnn.compiler.nir_import import NirImportError, _choose_dt

    def err(*a, **k):
        with pytest.raises(NirImportError) as e:
            _choose_dt(*a, **k)
        return str(e.value)

    # an explicit dt wins: a positive finite number
    assert _choose_dt({"a": IF([4.0])}, 0.5, "w") == 0.5 and _choose_dt({}, "0.25", "w") == 0.25
    assert err({}, "x", "w") == "dt must be 'auto' or a positive number, not 'x'"
    for bad in (0, -1.0, float("inf"), float("nan")):
        assert err({}, bad, "w") == f"dt must be a positive number, not {bad!r}"
    # then the writer's convention, then the NIR rule r * dt = 1 (IF) or dt * r / tau = 1 (LIF)
    assert _choose_dt({"a": IF([4.0])}, "auto", "w", NS(dt=0.01)) == 0.01
    assert _choose_dt({"a": IF([4.0, 4.0])}, "auto", "w", NS(dt=None)) == 0.25
    assert _choose_dt({"a": IF([4.0])}, None, "w") == 0.25
    assert _choose_dt({"l": LIF([0.02], [2.0])}, "auto", "w") == pytest.approx(0.01)
    assert _choose_dt({"l": LIF([0.02], [2.0]), "a": IF([4.0])}, "auto", "w") == 0.25  # IF first
    assert _choose_dt({"x": object()}, "auto", "w") == 1.0 and _choose_dt({}, "auto", "w") == 1.0
    # within a relative 1e-5 the values agree
    assert _choose_dt({"a": IF([4.0]), "b": IF([4.00001])}, "auto", "w") == 0.25
    assert err({"a": IF([4.0]), "b": IF([4.001])}, "auto", "w") == (
        "w: no single dt gives r*dt = 1 for nodes 'a', 'b'; pass --dt (the writer's time step in seconds)")
    assert err({"l": LIF([0.02], [2.0]), "m": LIF([0.04], [2.0])}, "auto", "w") == (
        "w: no single dt gives dt*r/tau = 1 for nodes 'l', 'm'; pass --dt (the writer's time step in seconds)")
    assert err({"a": IF([4.0]), "z": IF([0.0])}, "auto", "w") == (
        "w: node 'z': cannot choose dt automatically (r or tau not positive); pass --dt")
    assert err({"l": LIF([-0.02], [2.0])}, "auto", "w") == (
        "w: node 'l': cannot choose dt automatically (r or tau not positive); pass --dt")


class I:  # noqa: E742 - nir.I, nir.LI, nir.Conv2d, ... stand-ins (the importer reads the type name)
    def __init__(self, r):
        self.r = np.asarray(r, dtype=float)


class LI(LIF):
    pass


class Conv2d:
    def __init__(self, weight_shape, input_shape=None, transposed=False):
        self.weight, self.input_shape = np.zeros(weight_shape), input_shape
        self.metadata = {"transposed": True} if transposed else {}


class Affine:
    def __init__(self, weight_shape):
        self.weight = np.zeros(weight_shape)


class Linear(Affine):
    pass


class AvgPool2d:
    pass


class Input:
    def __init__(self, shape=None):
        self.input_type = {"input": None if shape is None else np.array(shape)}


class Other:
    def __init__(self, shape):
        self.input_type = {"input": np.array(shape)}


def test_nir_import_dt_choice_node_kinds_and_edges():
    from atsnn.compiler.nir_import import NirImportError, _choose_dt

    assert _choose_dt({"a": I([5.0])}, "auto", "w") == 0.2 and _choose_dt({"l": LI([0.3], [3.0])}, "auto", "w") == \
        pytest.approx(0.1)
    for nodes in ({"a": IF([np.inf])}, {"l": LIF([0.0], [2.0])}):  # dt = 0 is not positive either
        with pytest.raises(NirImportError, match="cannot choose dt automatically"):
            _choose_dt(nodes, "auto", "w")
    with pytest.raises(NirImportError, match="no single dt"):  # no absolute tolerance for tiny time steps
        _choose_dt({"a": IF([1e9]), "b": IF([2e9])}, "auto", "w")


def test_nir_import_drops_batch_dimensions():
    from atsnn.compiler.nir_import import _drop_batch

    def drop(shape, consumer):
        return _drop_batch(shape, {"i": Input(), "c": consumer}, "i", [("x", "y"), ("i", "c")])

    conv = Conv2d((4, 2, 3, 3))
    assert drop((1, 2, 5, 5), conv) == ((2, 5, 5), 1)  # down to (C, H, W) before a conv or pooling
    assert drop((1, 1, 2, 5, 5), conv) == ((2, 5, 5), 2)
    assert drop((2, 5, 5), conv) == ((2, 5, 5), 0)
    assert drop((2, 3, 4, 4), conv) == ((2, 3, 4, 4), 0)  # a leading 2 is not a batch
    assert drop((1, 3, 4, 4), AvgPool2d()) == ((3, 4, 4), 1)
    dense = Affine((4, 10))  # fan-in 10
    assert drop((1, 10), dense) == ((10,), 1) and drop((1, 1, 10), dense) == ((10,), 2)
    assert drop((1, 2, 5), dense) == ((2, 5), 1) and drop((1, 2, 5), Linear((4, 10))) == ((2, 5), 1)
    assert drop((1, 7, 10), dense) == ((10,), 2)  # Rockpool's (1, T, n) sample: the last axis
    assert drop((3, 10), dense) == ((3, 10), 0) and drop((10,), dense) == ((10,), 0)
    assert _drop_batch((1, 10), {"i": Input()}, "i", []) == ((1, 10), 0)  # no consumer


def test_nir_import_input_shape():
    from atsnn.compiler.nir_import import NirImportError, _input_shape

    def shape(inp, consumer=None):
        nodes = {"i": inp} if consumer is None else {"i": inp, "c": consumer}
        return _input_shape(nodes, "i", [("x", "y"), ("i", "c")] if consumer is not None else [], "w")

    assert shape(Input([2, 5, 5])) == (2, 5, 5)
    # inferred from the first consumer: a conv's input channels (weight[1], or weight[0] when transposed)
    assert shape(Input(), Conv2d((3, 4, 3, 3), input_shape=(5, 6))) == (4, 5, 6)
    assert shape(Input([]), Conv2d((3, 4, 3, 3), input_shape=(5, 6), transposed=True)) == (3, 5, 6)
    assert shape(Input(), Affine((4, 10))) == (10,) and shape(Input(), Linear((4, 7))) == (7,)
    assert shape(Input(), Other([9])) == (9,)  # the consumer's own input_type
    with pytest.raises(NirImportError) as e:
        shape(Input(), AvgPool2d())
    assert str(e.value) == "w: cannot determine the shape of Input node 'i'; give it an input_type"


class SumPool2d:
    pass


class Bare:  # a node without input_type / metadata attributes
    pass


def test_nir_import_batch_and_shape_edges():
    from atsnn.compiler.nir_import import NirImportError, _drop_batch, _input_shape

    def drop(shape, consumer):
        return _drop_batch(shape, {"i": Input(), "c": consumer}, "i", [("i", "c")])

    assert drop((1, 3, 4, 4), SumPool2d()) == ((3, 4, 4), 1)
    assert drop((1, 10), Affine((10,))) == ((1, 10), 0)  # a 1-D weight gives no fan-in to match
    assert drop((1, 1), Affine((4, 1))) == ((1,), 1)  # one input neuron: a single axis is kept

    def shape(inp, consumer):
        return _input_shape({"i": inp, "c": consumer}, "i", [("i", "c")], "w")

    assert _input_shape({"i": Input([10])}, "i", [], "w") == (10,)  # a one-element input_type
    assert shape(Bare(), Affine((4, 10))) == (10,)
    conv = Conv2d((3, 4, 3, 3), input_shape=(5, 6))
    del conv.metadata
    assert shape(Input(), conv) == (4, 5, 6)
    for consumer in (Other([]), Input()):  # an empty or missing input_type on the consumer says nothing
        with pytest.raises(NirImportError, match="cannot determine the shape of Input node 'i'"):
            shape(Input(), consumer)
