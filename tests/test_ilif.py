"""iLIF neurons (docs/hardware.md sec. 10): hand example, engine vs reference, float vs fixed, NIR, errors."""

import os
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atsnn.cli import main
from atsnn.config import load_hardware
from atsnn.errors import ConversionError, ProgramFormatError, QuantizationError, SimulationInputError
from atsnn.program import InputSpec, Layer, Program, Synapse, load_program, save_program, validate_program
from atsnn.compiler.ilif import convert_ilif, run_float_ilif, to_ilif
from atsnn.compiler.ir import FloatLayer, FloatNetwork, FloatSynapse
from atsnn.compiler.mapping import map_program_layers
from atsnn.compiler.pipeline import compile_model
from exact_check import assert_engine_matches_reference, first_multi_pass_program, run_without_jit
from atsnn.hwsim.engine import simulate
from atsnn.hwsim.policies import evaluate
from atsnn.hwsim.reference import reference_run
from netgen import random_inputs, random_network

WIDE = dict(numeric={"membrane_bits": 32, "threshold_bits": 31}, at={"membrane_bits": 32})


def _hand_program(T=2):
    hw = load_hardware("atsnn28-small")
    ex = {"ilif": {"T": T, "k": 2, "accumulate_steps": 1}}
    h = Layer(name="h", neuron="ilif", shape=(2,), bias=np.array([1, 0]), threshold=8, v_init=np.zeros(2, int),
              synapses=[Synapse(source="input", op="dense", weight=np.array([[3, -1], [2, 2]]), input_shape=(2,),
                                max_input=255)], extra=ex)
    o = Layer(name="o", neuron="integrator", shape=(2,), bias=np.zeros(2, int), threshold=0, v_init=np.zeros(2, int),
              synapses=[Synapse(source="h", op="dense", weight=np.eye(2, dtype=int), input_shape=(2,))],
              extra={"ilif": {"T": T, "k": 2, "accumulate_steps": T}})
    layers = [h, o]
    map_program_layers(layers, "o", hw)
    p = Program(name="two", hardware=hw, input=InputSpec(shape=(2,), scale=1.0), layers=layers, output="o",
                early_exit=False, at=None)
    validate_program(p)
    return p


def test_two_neurons_by_hand():
    p = _hand_program()
    tr = simulate(p, np.array([[1, 2]]), T=2, already_quantized=True)
    h, o = tr.layers["h"], tr.layers["o"]
    # h is fed only by the direct input: one accumulate step. Events (x0 bit 0), (x1 bit 1):
    # a = W @ x = [3 - 2, 2 + 4] = [1, 6]; V = 2*0 + a + b = [2, 6]
    # fire (Theta = 8): 2V = [4, 12] -> s1 = [0, 1], V = [4, 4]; 2V = [8, 8] -> s2 = [1, 1], V = [0, 0]
    # (binary expansion MSB first: 2/8 = 0.01b, 6/8 = 0.11b)
    # o doubles: u1 = 2*0 + s1 = [0, 1]; u2 = 2*u1 + s2 = [1, 3] = 4 * [2, 6] / 8
    assert tr.u[0].tolist() == [[0, 1], [1, 3]]
    assert h["spikes"][0].tolist() == [1, 2] and h["updates"][0].tolist() == [4, 2]
    assert h["events"][0].tolist() == [2, 0] and h["synops"][0].tolist() == [4, 0]
    assert o["events"][0].tolist() == [1, 2] and o["synops"][0].tolist() == [2, 4]
    # cycles (atsnn28-small: event 1, synop 1, update 2, overhead 8, at_update 1; one neuron per PE):
    # h step 1: accumulate 2 x (1 + 1) + 2 + 8 = 14, fire 2 + 8 = 10 -> 24; step 2: fire only, 10
    # o on the AT unit: step 1: 1 x (1 + 2) + 2 = 5; step 2: 2 x 3 + 2 = 8
    assert h["cycles"][0].tolist() == [24, 10] and h["fire_cycles"][0].tolist() == [10, 10]
    assert h["compute_cycles"][0].tolist() == [8, 2] and o["cycles"][0].tolist() == [5, 8]
    r = evaluate(tr, "fixed")
    assert r.cycles[0] == 24 + 10 + 5 + 8 + 1  # + input load ceil(2 B / 25.6 B per cycle)
    # energy of h, step 1 (sata28-500mhz; per byte = access energy / port bytes):
    # buffers: 4 deliveries x 2 B x (0.0713 + 0.0596) + fire: 2/8 B x (0.0713 + 0.0596)  = 1.079925
    # memory: accumulate 4 synops x (1 x 0.3452/2 + 3 x 0.609/2) + 2 x 5 B x 0.609/2      = 7.3894
    #         fire 2 neurons x 2 B (membrane) x 0.609/2                                    = 1.218
    # logic: accumulate 4 x add32 0.152 + 2 x (2 x 0.152 + 2 x cmp16 0.0391 + shift add16 0.0734)
    #        fire 2 x (add16 0.0734 + 3 x 0.0391) + 1 spike x 0.0734                       = 1.5192 + 0.4548
    # GLB: read the 2 B image + write the 1 B spike map                                     = 1.0884375
    assert h["energy_spike_buffers"][0, 0] == pytest.approx(1.079925)
    assert h["energy_pe_memory"][0, 0] == pytest.approx(7.3894 + 1.218)
    assert h["energy_pe_logic"][0, 0] == pytest.approx(1.5192 + 0.4548)
    assert h["energy_glb"][0, 0] == pytest.approx(2 * 11.03 / 32 + 12.77 / 32)
    assert h["fire_energy"][0, 0] == pytest.approx(2 / 8 * 0.1309 + 1.218 + 0.4548 + 12.77 / 32)
    # step 2: fire only (spikes 2)
    assert h["energy_pe_logic"][0, 1] == pytest.approx(2 * (0.0734 + 3 * 0.0391) + 2 * 0.0734)
    # the reference agrees
    ref = reference_run(p, np.array([[1, 2]]), 2)
    assert ref.u.tolist() == tr.u.tolist() and ref.compute_cycles["h"].tolist() == [[8, 2]]


def test_float_semantics_by_hand():
    h = FloatLayer(name="h", neuron="if", shape=(2,), bias=np.zeros(2), threshold=np.array([1.0, 2.0]),
                   v_init=np.zeros(2), synapses=[FloatSynapse(source="input", op="dense",
                                                               weight=np.array([[0.3, 0.0], [1.3, 0.0]]),
                                                               input_shape=(2,))])
    o = FloatLayer(name="o", neuron="integrator", shape=(2,), bias=np.zeros(2), threshold=np.ones(2),
                   v_init=np.zeros(2), synapses=[FloatSynapse(source="h", op="dense", weight=np.diag([1.0, 2.0]),
                                                               input_shape=(2,))])
    net = to_ilif(FloatNetwork(name="t", input_shape=(2,), layers=[h, o], output="o"), 3, offset=0.0)
    r = run_float_ilif(net, np.array([[1.0, 0.0]]), 3, per_neuron=True)
    # 0.3 / 1 = 0.010b (truncated to 3 bits), 1.3 / 2 = 0.650 -> 0.101b: spikes per step [0+1, 1+0, 0+1]
    assert r.spike_counts["h"][0].tolist() == [1, 1, 1]
    # logits = W_o (lambda * bits): [1 * 0.25, 2 * 0.625 ... ] with weights carrying lambda: u_3 = 2**3 * logits
    np.testing.assert_allclose(r.u[0, -1], [8 * 0.25, 8 * 2 * 0.625])


def _ilif_net(seed, T):
    net = random_network(seed)
    for l in net.layers:
        if l.neuron != "integrator":
            l.neuron, l.beta, l.reset = "if", 1.0, "subtract"
    return to_ilif(net, T)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), hw_name=st.sampled_from(["atsnn28-small", "atsnn28", "wide"]),
       T=st.integers(1, 6))
def test_engine_matches_reference(seed, hw_name, T):
    hw = load_hardware("atsnn28").replace(**WIDE) if hw_name == "wide" else load_hardware(hw_name)
    net = _ilif_net(seed, T)
    program = compile_model(net, hw=hw, input_max=1.0)
    tr, ref = assert_engine_matches_reference(program, random_inputs(net, 4, seed), T)
    assert not program.early_exit


def test_tight_memory_passes_and_spills_still_match():
    hw = load_hardware("atsnn28-small").replace(pe={"data_memory_bytes": 64})
    seed, net, program = first_multi_pass_program(lambda s: _ilif_net(s, 3), hw)
    assert_engine_matches_reference(program, random_inputs(net, 3, seed), 3)


def test_kernels_without_jit():
    code = textwrap.dedent("""
        import sys, numpy as np
        sys.path.insert(0, %r)
        from atsnn.config import load_hardware
        from atsnn.compiler.pipeline import compile_model
        from atsnn.hwsim.engine import simulate
        from atsnn.hwsim.inputs import quantize_input
        from atsnn.hwsim.reference import reference_run
        from netgen import random_inputs
        from test_ilif import _ilif_net
        import atsnn.hwsim.ilif as k
        assert not hasattr(k.ilif_fire_batch, 'signatures')
        for seed in (3, 7):
            net = _ilif_net(seed, 4)
            p = compile_model(net, hw=load_hardware('atsnn28-small'), input_max=1.0)
            xq = quantize_input(p, random_inputs(net, 3, seed))
            tr = simulate(p, xq, T=4, already_quantized=True)
            ref = reference_run(p, xq, 4)
            assert np.array_equal(tr.u, ref.u)
            for l in p.layers:
                assert np.array_equal(tr.layers[l.name]['spikes'], ref.spike_counts[l.name])
                assert np.array_equal(tr.layers[l.name]['sat_hi'], ref.sat_hi[l.name])
        print('ok')
    """ % os.path.dirname(__file__))
    run_without_jit(code)


@pytest.fixture(scope="module")
def digits():
    from atsnn.compiler.nir_import import import_nir
    from atsnn.hwsim.datasets import digits_test_split
    from atsnn.workloads.demo import MODEL
    x, y = digits_test_split()
    return import_nir(MODEL), x, y


@pytest.mark.parametrize("T, wide", [(8, False), (16, True)])
def test_digits_fixed_point_tracks_float_ilif(digits, T, wide):
    """Tolerance: the fixed-point iLIF program predicts the float iLIF SNN's class for >= 95 % of the test
    images and their accuracies differ by at most 1.5 points (16-bit membranes at T = 8 cap the hidden
    threshold at 2**8 x 64 LSB; 32-bit membranes at T = 16 keep full 8-bit weights)."""
    net, x, y = digits
    il = to_ilif(net, T)
    hw = load_hardware("atsnn28").replace(**WIDE) if wide else None
    prog = compile_model(il, hw=hw)
    fl = run_float_ilif(il, x, T)
    tr = simulate(prog, x, y, T=T)
    pf, pq = fl.u[:, -1].argmax(axis=1), tr.u[:, -1].argmax(axis=1)
    assert (pf == pq).mean() >= 0.95
    assert abs((pf == y).mean() - (pq == y).mean()) <= 0.015
    assert (pq == y).mean() >= 0.95
    # accumulate + fire: every hidden neuron is updated twice per step, the output once
    # (conv0, fed only by the image, has a single accumulate step)
    for l in prog.layers:
        upd = tr.layers[l.name]["updates"][0].tolist()
        if l.name == "conv0":
            assert upd == [2 * l.neurons] + [l.neurons] * (T - 1)
        else:
            assert upd == [(1 if l.neuron == "integrator" else 2) * l.neurons] * T
    rep = prog.report["ilif"]
    assert rep["T"] == T and rep["spike_map_bytes_unpipelined"] == T * rep["spike_map_bytes_pipelined"]


def test_convert_ilif_equals_if_conversion_reinterpreted():
    from atsnn.compiler.convert import Dense, Flatten, ReLU, convert
    rng = np.random.default_rng(0)
    ann = [Flatten(), Dense(rng.normal(0, 0.5, (6, 8)), rng.normal(0, 0.1, 6)), ReLU(),
           Dense(rng.normal(0, 0.5, (3, 6)))]
    calib = rng.uniform(0, 1, (50, 8))
    a = convert_ilif(ann, (8,), calib, T=5)
    b = to_ilif(convert(ann, (8,), calib, v_init="zero"), 5)
    assert [l.neuron for l in a.layers] == ["ilif", "integrator"]
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.synapses[0].weight, lb.synapses[0].weight)
        np.testing.assert_array_equal(la.v_init, lb.v_init)
    np.testing.assert_allclose(a.layers[0].v_init, 0.5 * a.layers[0].threshold / 2 ** 5)
    with pytest.raises(ConversionError, match="LMPC"):
        convert_ilif(ann, (8,), calib, T=5, v_init="lmpc")


def test_nir_round_trip(tmp_path, digits):
    from atsnn.compiler.nir_export import export_nir
    from atsnn.compiler.nir_import import import_nir
    net, _, _ = digits
    il = to_ilif(net, 6)
    export_nir(il, tmp_path / "m.nir")
    back = import_nir(tmp_path / "m.nir")
    assert [l.neuron for l in back.layers] == [l.neuron for l in il.layers] == ["ilif", "ilif", "integrator"]
    for a, b in zip(il.layers, back.layers):
        assert b.extra["ilif"] == a.extra["ilif"]
        np.testing.assert_allclose(b.v_init, a.v_init)
        np.testing.assert_allclose(b.threshold, a.threshold)
        for sa, sb in zip(a.synapses, b.synapses):
            np.testing.assert_allclose(sb.weight, sa.weight, rtol=1e-6)
    # a reader that ignores the metadata sees the rate-coded IF conversion of the same ANN
    import nir
    g = nir.read(tmp_path / "m.nir", type_check=False)
    assert type(g.nodes["conv0"]).__name__ == "IF" and g.metadata["ilif_T"] == 6


@pytest.mark.filterwarnings("ignore:.*created but never used")  # the array top refuses the program in __init__
def test_cli_compile_simulate_and_errors(tmp_path, digits, capsys):
    from atsnn.compiler.nir_export import export_nir
    net, _, _ = digits
    model = tmp_path / "ilif.nir"
    export_nir(to_ilif(net, 4), model)
    prog = tmp_path / "p"
    assert main(["compile", str(model), "-o", str(prog), "--T", "6"]) == 0
    assert "iLIF program for T = 6" in capsys.readouterr().out
    p = load_program(prog)
    assert not p.early_exit and p.at is None and all(l.extra["ilif"]["T"] == 6 for l in p.layers)
    run = tmp_path / "run"
    assert main(["simulate", str(prog), "--samples", "40", "-o", str(run), "--quiet"]) == 0  # T from the program
    out = capsys.readouterr().out
    assert "fixed" in out and "dtsnn" not in out and "T <= 6" in out

    def err(args):
        assert main(args) == 2
        e = capsys.readouterr().err.strip()
        assert e.startswith("error: ") and len(e.splitlines()) == 1
        return e

    for pol in ("dtsnn", "atsn"):
        e = err(["simulate", str(prog), "--policy", pol, "-o", str(tmp_path / "r2"), "--quiet"])
        assert "iLIF" in e and "layer 'conv0'" in e and "impossible" in e and "--policy fixed" in e
    assert "impossible" in err(["simulate", str(prog), "--sweep", "-o", str(tmp_path / "r3")])
    assert "T = 6" in err(["simulate", str(prog), "--T", "8", "-o", str(tmp_path / "r4"), "--quiet"])
    assert "analytic" in err(["estimate", str(prog), "--rate", "0.1"])
    assert "iLIF is not in the array top" in err(["rtl", "export", "--program", str(prog), "-o",
                                                  str(tmp_path / "v"), "--no-lint"])
    e = err(["compile", str(model), "-o", str(tmp_path / "q"), "--reset-mode", "to_value"])
    assert "node 'conv0'" in e and "soft reset" in e
    e = err(["compile", str(model), "-o", str(tmp_path / "q"), "--T", "14"])
    assert "layer 'conv1'" in e and "T = 14" in e and "membrane_bits >= 20" in e
    from atsnn.workloads.demo import MODEL
    assert "iLIF models only" in err(["compile", str(MODEL), "-o", str(tmp_path / "q"), "--T", "4"])
    assert not (tmp_path / "q").exists() and not (tmp_path / "r2").exists()


def test_wide_hardware_file_is_accepted(tmp_path, digits, capsys):
    from atsnn.config import hardware_to_toml
    from atsnn.compiler.nir_export import export_nir
    net, _, _ = digits
    toml = tmp_path / "wide.toml"
    toml.write_text(hardware_to_toml(load_hardware("atsnn28").replace(**WIDE)))
    export_nir(to_ilif(net, 16), tmp_path / "m.nir")
    assert main(["compile", str(tmp_path / "m.nir"), "-o", str(tmp_path / "p"), "--hw", str(toml)]) == 0
    p = load_program(tmp_path / "p")
    assert p.hardware.numeric.membrane_bits == 32 and p.layers[1].threshold > 1 << 20


def test_unsupported_combinations():
    net = random_network(1)
    for l in net.layers:
        if l.neuron != "integrator":
            l.neuron, l.beta, l.reset = "if", 1.0, "to_value"
    with pytest.raises(ConversionError, match=r"layer 'c1': iLIF needs soft reset"):
        to_ilif(net, 4)
    with pytest.raises(ConversionError, match="T must be an integer >= 1"):
        to_ilif(_ilif_net(1, 2), 0)
    p = compile_model(_ilif_net(2, 3), hw=load_hardware("atsnn28-small"), input_max=1.0)
    with pytest.raises(SimulationInputError, match=r"compiled for iLIF at T = 3"):
        simulate(p, random_inputs(random_network(2), 2, 0), T=4)
    tr = simulate(p, random_inputs(random_network(2), 2, 0), T=3)
    with pytest.raises(SimulationInputError, match="impossible"):
        evaluate(tr, "dtsnn", theta=0.5)
    p.early_exit = True
    with pytest.raises(ProgramFormatError, match="no early exit"):
        validate_program(p)
    p.early_exit = False
    p.layers[0].reset = "to_value"
    with pytest.raises(ProgramFormatError, match="soft reset"):
        validate_program(p)
    with pytest.raises(QuantizationError, match=r"layer 'c2': iLIF at T = 30 needs numeric.membrane_bits >= 36.*"
                                                r"no hardware description allows more than 32 bits"):
        compile_model(_ilif_net(2, 30), hw=load_hardware("atsnn28").replace(**WIDE), input_max=1.0)


def test_program_save_load_round_trip(tmp_path):
    p = compile_model(_ilif_net(5, 4), hw=load_hardware("atsnn28-small"), input_max=1.0)
    save_program(p, tmp_path / "p")
    q = load_program(tmp_path / "p")
    assert [l.extra["ilif"] for l in q.layers] == [l.extra["ilif"] for l in p.layers]
    x = random_inputs(random_network(5), 3, 1)
    np.testing.assert_array_equal(simulate(p, x, T=4).u, simulate(q, x, T=4).u)
