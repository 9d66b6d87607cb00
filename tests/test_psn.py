"""Sliding PSN neurons (docs/hardware.md sec. 11): kernel vs reference, engine vs network reference, a hand
example, NIR convention, refusals, float vs fixed, CLI errors."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atsnn.cli import main
from atsnn.config import load_hardware
from atsnn.errors import NirImportError, ProgramFormatError, QuantizationError, SimulationInputError
from atsnn.program import InputSpec, Layer, Program, Synapse, load_program, save_program, validate_program
from atsnn.compiler.float_sim import run_float
from atsnn.compiler.ir import FloatLayer, FloatNetwork, FloatSynapse
from atsnn.compiler.mapping import map_program_layers
from atsnn.compiler.nir_export import export_nir
from atsnn.compiler.nir_import import conv_out_shape, import_nir
from atsnn.compiler.pipeline import compile_model
from atsnn.hwsim.engine import simulate
from atsnn.hwsim.inputs import quantize_sequence_input
from atsnn.hwsim.policies import evaluate
from atsnn.hwsim.psn import psn_update_batch
from atsnn.hwsim.psn_reference import psn_update
from exact_check import assert_engine_matches_reference
from atsnn.hwsim.reference import reference_run

SMALL = "atsnn28-small"


# --------------------------------------------------------------------------- random small PSN networks
def psn_network(seed: int, *, k: int | None = None, mode: str = "sliding") -> FloatNetwork:
    """A random sequence-input net: a PSN layer (dense or conv) from the frames, optionally a second PSN or an
    IF/LIF layer, and an integrator."""
    rng = np.random.default_rng(seed)

    def psn_layer(name, shape, syns):
        kk = int(rng.integers(1, 6)) if k is None else k
        c = shape[0]
        return FloatLayer(name=name, neuron="psn", shape=shape, synapses=syns, bias=rng.normal(0, 0.1, c),
                          threshold=rng.uniform(0.3, 1.2, c), v_init=np.zeros(c),
                          comparator=str(rng.choice([">=", ">"])),
                          extra={"psn": {"mode": mode, "k": kk, "taps": list(rng.normal(0.4, 0.5, kk))}})

    if rng.random() < 0.5:
        frame = (int(rng.integers(3, 9)),)
        n1 = int(rng.integers(2, 12))
        first = psn_layer("p1", (n1,), [FloatSynapse(source="input", op="dense",
                                                     weight=rng.normal(0, 0.7, (n1, frame[0])), input_shape=frame)])
    else:
        frame = (int(rng.integers(1, 3)), int(rng.integers(4, 7)), int(rng.integers(4, 7)))
        c1 = int(rng.integers(1, 4))
        w = rng.normal(0, 0.6, (c1, frame[0], 3, 3))
        s1 = conv_out_shape(frame, w.shape, (1, 1), (1, 1))
        first = psn_layer("p1", s1, [FloatSynapse(source="input", op="conv2d", weight=w, input_shape=frame,
                                                  padding=(1, 1))])
    layers = [first]
    n1 = first.neurons
    flat = len(first.shape) > 1
    if rng.random() < 0.6:
        n2 = int(rng.integers(2, 8))
        syn = FloatSynapse(source="p1", op="dense", weight=rng.normal(0, 0.6, (n2, n1)), input_shape=(n1,),
                           flatten=flat)
        if rng.random() < 0.5:
            layers.append(psn_layer("p2", (n2,), [syn]))
        else:
            layers.append(FloatLayer(name="p2", neuron="if", shape=(n2,), synapses=[syn], bias=np.zeros(n2),
                                     threshold=np.ones(n2), v_init=np.zeros(n2)))
        prev, n_prev, flat = "p2", n2, False
    else:
        prev, n_prev = "p1", n1
    classes = int(rng.integers(2, 5))
    layers.append(FloatLayer(name="out", neuron="integrator", shape=(classes,),
                             synapses=[FloatSynapse(source=prev, op="dense", weight=rng.normal(0, 0.5, (classes, n_prev)),
                                                    input_shape=(n_prev,), flatten=flat)],
                             bias=np.zeros(classes), threshold=np.ones(classes), v_init=np.zeros(classes)))
    return FloatNetwork(name=f"psn{seed}", input_shape=frame, layers=layers, output="out", input_encoding="sequence")


def sequences(net: FloatNetwork, n: int, T: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed + 99).uniform(0, 1, (n, T) + tuple(net.input_shape))


# --------------------------------------------------------------------------- kernel == reference
@st.composite
def psn_cases(draw):
    tap_bits = draw(st.integers(2, 16))
    mem_bits = draw(st.integers(4, 32))
    k = draw(st.integers(1, 16))
    lo, hi = -(1 << (tap_bits - 1)), (1 << (tap_bits - 1)) - 1
    taps = draw(st.lists(st.integers(lo, hi), min_size=k, max_size=k))
    B, N, steps = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    big = 1 << (mem_bits + 1)  # currents beyond the membrane range: both saturations occur
    acc = draw(st.lists(st.integers(-big, big), min_size=B * N * steps, max_size=B * N * steps))
    bias = draw(st.lists(st.integers(-(1 << 15), (1 << 15) - 1), min_size=N, max_size=N))
    return dict(taps=taps, shift=draw(st.integers(0, 24)), threshold=draw(st.integers(1, (1 << 15) - 1)),
                ge=draw(st.booleans()), vmin=-(1 << (mem_bits - 1)), vmax=(1 << (mem_bits - 1)) - 1,
                acc=np.array(acc, dtype=np.int64).reshape(steps, B, N), bias=np.array(bias, dtype=np.int64))


def _kernel_vs_reference(c) -> None:
    steps, B, N = c["acc"].shape
    k = len(c["taps"])
    hist_k = np.zeros((B, N, k - 1), dtype=np.int64)
    hist_r = hist_k.copy()
    for t in range(steps):
        spikes = np.empty((B, N), dtype=np.uint8)
        counts = np.zeros((B, 3), dtype=np.int64)
        psn_update_batch(hist_k, c["acc"][t], c["bias"], np.array(c["taps"], dtype=np.int64), np.int64(c["shift"]),
                         np.int64(c["threshold"]), c["ge"], np.int64(c["vmin"]), np.int64(c["vmax"]), spikes, counts)
        hist_r, z, hi, lo, _ = psn_update(hist_r, c["acc"][t], c["bias"], taps=c["taps"], shift=c["shift"],
                                          threshold=c["threshold"], comparator=">=" if c["ge"] else ">",
                                          vmin=c["vmin"], vmax=c["vmax"])
        assert np.array_equal(hist_k, hist_r)
        assert np.array_equal(spikes, z)
        assert counts[:, 0].tolist() == z.sum(axis=1).tolist()
        assert counts[:, 1].tolist() == hi.sum(axis=1).tolist()
        assert counts[:, 2].tolist() == lo.sum(axis=1).tolist()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(psn_cases())
def test_kernel_equals_reference(c):
    _kernel_vs_reference(c)


def test_kernel_history_order_and_negative_shift():
    """k = 3: the oldest stored current meets taps[0]; ``>>`` rounds toward minus infinity."""
    hist, z, hi, lo, h = psn_update(np.array([[10, 20]]), np.array([-7]), 0, taps=[1, -2, 3], shift=1, threshold=-6,
                                    comparator=">=", vmin=-8, vmax=7)
    assert h.tolist() == [10 - 40 - 21] and z.tolist() == [0]  # -51 >> 1 = -26 < -6
    assert hist.tolist() == [[20, -7]] and not hi.any() and not lo.any()
    spikes, counts = np.empty((1, 1), np.uint8), np.zeros((1, 3), np.int64)
    hk = np.array([[[10, 20]]], dtype=np.int64)
    # x = clamp(-9) = -8 (a lower saturation); H = 10 - 40 - 24 = -54; -54 >> 1 = -27 >= -27 fires
    psn_update_batch(hk, np.array([[-9]]), np.zeros(1, np.int64), np.array([1, -2, 3]), np.int64(1), np.int64(-27),
                     True, np.int64(-8), np.int64(7), spikes, counts)
    assert hk.tolist() == [[[20, -8]]] and spikes.tolist() == [[1]] and counts.tolist() == [[1, 0, 1]]


# --------------------------------------------------------------------------- engine == network reference
def _engine_vs_reference(seed: int, T: int, hw=SMALL):
    net = psn_network(seed)
    p = compile_model(net, hw=load_hardware(hw), input_max=1.0)
    xq = quantize_sequence_input(p, sequences(net, 3, T + 1, seed), T)
    tr, _ = assert_engine_matches_reference(p, xq, T, quantized=True)
    return p, tr


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_engine_equals_reference_on_random_psn_nets(seed, T):
    _engine_vs_reference(seed, T)


def test_engine_reference_fire_and_saturate():
    """Guard against a vacuous property: PSN layers fire, and saturate when the current scale is calibrated on
    inputs 4x weaker than the ones simulated (without calibration the sec. 2 bound makes saturation impossible)."""
    fired = sat = 0
    for seed in range(6):
        net = psn_network(seed)
        x = sequences(net, 3, 5, seed)
        p = compile_model(net, hw=load_hardware(SMALL), input_max=1.0, calib=x * 0.25)
        xq = quantize_sequence_input(p, x, 5)
        tr = simulate(p, xq, T=5, already_quantized=True)
        ref = reference_run(p, xq, 5)
        assert np.array_equal(tr.u, ref.u)
        for f in ("spikes", "sat_hi", "sat_lo"):
            assert np.array_equal(tr.layers["p1"][f], getattr(ref, f if f != "spikes" else "spike_counts")["p1"])
        fired += int(tr.layers["p1"]["spikes"].sum())
        sat += int(tr.layers["p1"]["sat_hi"].sum() + tr.layers["p1"]["sat_lo"].sum())
    assert fired > 0 and sat > 0


def test_kernel_and_engine_without_jit():
    code = textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        import numpy as np
        import atsnn.hwsim.psn as k
        assert not hasattr(k.psn_update_batch, 'signatures')
        from test_psn import _engine_vs_reference, _kernel_vs_reference
        rng = np.random.default_rng(0)
        for k_ in (1, 2, 5, 16):
            _kernel_vs_reference(dict(taps=list(rng.integers(-128, 128, k_)), shift=3, threshold=50, ge=False,
                                      vmin=-2**15, vmax=2**15 - 1, acc=rng.integers(-2**17, 2**17, (4, 2, 3)),
                                      bias=rng.integers(-100, 100, 3)))
        for seed in (1, 4):
            _engine_vs_reference(seed, 4)
        print('ok')
    """ % os.path.dirname(__file__))
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")


# --------------------------------------------------------------------------- hand-computed example
def _hand_program():
    hw = load_hardware(SMALL)
    h = Layer(name="h", neuron="psn", shape=(2,), bias=np.array([0, 1]), threshold=3, v_init=np.zeros(2, int),
              synapses=[Synapse(source="input", op="dense", weight=np.array([[1, 2], [-1, 1]]), input_shape=(2,),
                                max_input=255)],
              extra={"psn": {"mode": "sliding", "k": 3, "taps": [1, -1, 2], "shift": 1}})
    o = Layer(name="o", neuron="integrator", shape=(2,), bias=np.zeros(2, int), threshold=0, v_init=np.zeros(2, int),
              synapses=[Synapse(source="h", op="dense", weight=np.eye(2, dtype=int), input_shape=(2,))])
    layers = [h, o]
    early = map_program_layers(layers, "o", hw)
    p = Program(name="hand", hardware=hw, input=InputSpec(shape=(2,), encoding="sequence", scale=1.0), layers=layers,
                output="o", early_exit=early, at=None)
    validate_program(p)
    return p


def test_two_psn_neurons_by_hand():
    p = _hand_program()
    assert p.early_exit and p.layers[0].mapping.pes_used == 2
    # state: (k-1) x 16 + 24 bits = 7 B per neuron; taps: ceil(3 x 8 / 8) = 3 B on every PE (no weights counted
    # twice: 2 weights of 1 B for the PE's one neuron)
    assert p.layers[0].mapping.resident_state_bytes_per_pe == 7
    assert p.layers[0].mapping.resident_weight_bytes_per_pe == 2 + 3
    x = np.array([[[3, 1], [0, 2], [1, 0]]])  # frames t = 1, 2, 3
    tr = simulate(p, x, T=3, already_quantized=True)
    h, o = tr.layers["h"], tr.layers["o"]
    # x_t = W @ frame + b: t1 [3 + 2, -3 + 1 + 1] = [5, -1]; t2 [4, 2 + 1] = [4, 3]; t3 [1, -1 + 1] = [1, 0]
    # H = 1 x[t-2] - 1 x[t-1] + 2 x[t]:  n0: 10, -5 + 8 = 3, 5 - 4 + 2 = 3  -> >> 1: 5, 1, 1  (theta 3: 1, 0, 0)
    #                                    n1: -2, 1 + 6 = 7, -1 - 3 + 0 = -4 -> >> 1: -1, 3, -2 (1 at t2)
    assert h["spikes"][0].tolist() == [1, 1, 0]
    assert tr.u[0].tolist() == [[1, 0], [1, 1], [1, 1]]
    # bit-serial frames: popcounts 2 + 1, 1, 1 events; each reaches both neurons
    assert h["events"][0].tolist() == [3, 1, 1] and h["synops"][0].tolist() == [6, 2, 2]
    assert o["events"][0].tolist() == [1, 1, 0] and o["synops"][0].tolist() == [2, 2, 0]
    # cycles (atsnn28-small: event 1, synop 1, update 2, psn_tap 1, overhead 8; one neuron per PE):
    # h: events x (1 + 1) + (2 + 3 x 1) x 1 + 8 = 19, 15, 15; the 2 B frame from DRAM takes 1 cycle (no stall)
    # o on the AT unit: spikes x (1 + 1 x 2) + at_update 1 x 2 = 5, 5, 2
    assert h["cycles"][0].tolist() == [19, 15, 15] and o["cycles"][0].tolist() == [5, 5, 2]
    assert h["dram_bytes"][0].tolist() == [2, 2, 2] and h["glb_bytes"][0].tolist() == [1, 1, 1]
    r = evaluate(tr, "fixed")
    assert tr.input_load_cycles == 0 and tr.input_load_energy_pj == 0  # frames are loaded per timestep
    assert r.cycles[0] == 19 + 15 + 15 + 5 + 5 + 2
    # energy of h at t1 (sata28-500mhz, per byte = access energy / port bytes):
    # buffers: 6 deliveries x 2 B x (0.0713 + 0.0596) + 2/8 B x (0.0713 + 0.0596)            = 1.603525
    # memory: 6 synops x (1 B x 0.3452/2 + 3 B x (0.3452 + 0.2638)/2)                           = 6.5166
    #         2 neurons x (3 B acc x 0.3045 + 2 B history x 2 x (read 0.1726 + write 0.1319))   = 4.263
    # logic: 6 x add24 0.152 + 2 x (add24 0.152 + 2 cmp16 0.0391 + 3 mul16 1.022 + 2 add26->32 0.152
    #        + cmp26->32 0.085)                                                                   = 0.912 + 7.3704
    # GLB: write the 1 B spike map; DRAM: the 2 B frame x 64 pJ
    assert h["energy_spike_buffers"][0, 0] == pytest.approx(1.603525)
    assert h["energy_pe_memory"][0, 0] == pytest.approx(6.5166 + 4.263)
    assert h["energy_pe_logic"][0, 0] == pytest.approx(0.912 + 7.3704)
    assert h["energy_glb"][0, 0] == pytest.approx(12.77 / 32)
    assert h["energy_dram"][0, 0] == pytest.approx(128.0)
    # leakage: one multiplier16 (0.279 uW) per PE on top of a program without PSN
    act = tr.action
    no_psn = type(act)(act.hw, act.costs)
    assert act.leakage_mw() - no_psn.leakage_mw() == pytest.approx(p.hardware.pe_count * 0.000279)
    # the reference agrees on all of it
    ref = reference_run(p, x, 3)
    assert ref.u.tolist() == tr.u.tolist() and ref.compute_cycles["h"][0].tolist() == [11, 7, 7]


# --------------------------------------------------------------------------- program rules
def test_program_rules_and_round_trip(tmp_path):
    p = _hand_program()
    save_program(p, tmp_path / "p")
    q = load_program(tmp_path / "p")
    assert q.input.encoding == "sequence" and q.layers[0].extra["psn"]["taps"] == [1, -1, 2]

    def broken(**psn):
        r = _hand_program()
        r.layers[0].extra["psn"].update(psn)
        return r

    cases = [(dict(mode="full"), "full PSN needs all T inputs"), (dict(mode="masked"), "masked PSN ties"),
             (dict(taps=[1] * 17, k=17), "numeric.psn_max_taps = 16"), (dict(taps=[1, 200, 1]), "psn_tap_bits"),
             (dict(shift=-1), "shift"), (dict(k=4), "k = 4 but 3 taps"), (dict(taps=[1.5, 1, 1]), "integers")]
    for change, msg in cases:
        with pytest.raises(ProgramFormatError, match=msg) as e:
            validate_program(broken(**change))
        assert "layer 'h'" in str(e.value) and "\n" not in str(e.value)
    r = _hand_program()
    r.layers[0].threshold = 0
    with pytest.raises(ProgramFormatError, match="threshold 0 outside"):
        validate_program(r)
    r = _hand_program()
    r.input.encoding = "frames"
    with pytest.raises(ProgramFormatError, match="input encoding 'frames'"):
        validate_program(r)
    # a refused mode in a saved program is refused at load, naming the layer
    save_program(broken(mode="masked"), tmp_path / "m")
    with pytest.raises(ProgramFormatError, match="layer 'h': the masked PSN"):
        load_program(tmp_path / "m")


# --------------------------------------------------------------------------- NIR convention
def test_nir_round_trip(tmp_path):
    net = psn_network(5, k=4)
    export_nir(net, tmp_path / "p.nir")
    back = import_nir(tmp_path / "p.nir")
    assert back.input_encoding == "sequence"
    psn_layers = [l for l in back.layers if l.neuron == "psn"]
    assert [l.extra["psn"]["taps"] for l in psn_layers] == [l.extra["psn"]["taps"] for l in net.layers
                                                             if l.neuron == "psn"]
    x = sequences(net, 4, 6, 5)
    assert np.allclose(run_float(net, x, 6).u, run_float(back, x, 6).u, atol=1e-5)
    import nir
    g = nir.read(tmp_path / "p.nir")
    md = g.nodes["p1"].metadata
    assert type(g.nodes["p1"]).__name__ == "Threshold" and md["neuron_model"] == "psn"
    assert md["psn_mode"] == "sliding" and len(md["psn_taps"]) == 4 and g.metadata["input_encoding"] == "sequence"


@pytest.mark.parametrize("mode", ["full", "masked"])
def test_nir_refuses_full_and_masked(tmp_path, mode):
    import nir
    g = export_nir(psn_network(2, k=3))
    g.nodes["p1"].metadata["psn_mode"] = mode
    with pytest.raises(NirImportError, match=f"node 'p1': the {mode} PSN") as e:
        import_nir(g)
    assert "\n" not in str(e.value)
    # a bare Threshold (no PSN metadata) stays rejected
    g = export_nir(psn_network(2, k=3))
    g.nodes["p1"].metadata = {}
    with pytest.raises(NirImportError, match="node 'p1' of type Threshold is not supported"):
        import_nir(g)


# --------------------------------------------------------------------------- quantizer
def test_quantizer_errors_name_layer_and_limit():
    with pytest.raises(QuantizationError, match="layer 'p1'.*numeric.psn_max_taps = 16"):
        compile_model(psn_network(1, k=17), input_max=1.0)
    with pytest.raises(QuantizationError, match="layer 'p1': the full PSN"):
        compile_model(psn_network(1, k=3, mode="full"), input_max=1.0)
    net = psn_network(1, k=3)
    net.layers[0].threshold = net.layers[0].threshold * 1e-9  # theta < 1 LSB of H
    with pytest.raises(QuantizationError, match="layer 'p1'.*numeric.membrane_bits"):
        compile_model(net, input_max=1.0)


def test_quantizer_scale_rule():
    """Without calibration, s_l makes the accumulator bound fit membrane_max (no saturation is possible);
    with calibration, the p99.9 current decides when it needs a coarser scale than the weights."""
    net = psn_network(3, k=3)
    p = compile_model(net, input_max=1.0)
    rep = p.report["quantization"][0]
    assert rep["psn"]["current_max_source"].startswith("accumulator bound")
    assert rep["max_accumulation"] <= p.hardware.membrane_max * 1.01
    assert p.layers[0].extra["psn"]["shift"] >= 0 and 1 <= p.layers[0].threshold <= p.hardware.threshold_max
    assert max(abs(q) for q in p.layers[0].extra["psn"]["taps"]) == 127
    x = sequences(net, 64, 8, 3)
    pc = compile_model(net, calib=x)
    rc = pc.report["quantization"][0]["psn"]
    assert rc["current_max_source"].startswith("calibration") and rc["current_max"] < rep["psn"]["current_max"]
    assert pc.layers[0].scale == pytest.approx(max(rc["scale_for_weights"], rc["scale_for_current"]))
    assert pc.layers[0].scale <= p.layers[0].scale


def test_float_vs_fixed_on_small_psn_net():
    """Tolerance: on a 16-neuron PSN net (k = 4) with calibrated scales, the fixed-point program's per-step
    spike counts correlate with the float SNN's at >= 0.95, their totals differ by <= 5 %, and the output
    class agrees on >= 90 % of 64 random sequences."""
    rng = np.random.default_rng(11)
    h = FloatLayer(name="h", neuron="psn", shape=(16,), bias=rng.normal(0, 0.05, 16), threshold=np.full(16, 0.8),
                   v_init=np.zeros(16), synapses=[FloatSynapse(source="input", op="dense",
                                                               weight=rng.normal(0, 0.5, (16, 8)), input_shape=(8,))],
                   extra={"psn": {"mode": "sliding", "k": 4, "taps": [0.2, 0.4, 0.6, 1.0]}})
    o = FloatLayer(name="out", neuron="integrator", shape=(5,), bias=np.zeros(5), threshold=np.ones(5),
                   v_init=np.zeros(5), synapses=[FloatSynapse(source="h", op="dense", weight=rng.normal(0, 1, (5, 16)),
                                                              input_shape=(16,))])
    net = FloatNetwork(name="small", input_shape=(8,), layers=[h, o], output="out", input_encoding="sequence")
    x = rng.uniform(0, 1, (64, 8, 8))
    p = compile_model(net, calib=x)
    fl = run_float(net, x, 8)
    tr = simulate(p, x, T=8)
    a, b = fl.spike_counts["h"].ravel(), tr.layers["h"]["spikes"].ravel()
    assert np.corrcoef(a, b)[0, 1] >= 0.95
    assert abs(b.sum() / a.sum() - 1) <= 0.05
    assert (fl.u[:, -1].argmax(1) == tr.u[:, -1].argmax(1)).mean() >= 0.9
    agree = {r["layer"]: r for r in p.report["agreement"]}
    assert agree["h"]["spike_count_correlation"] >= 0.95 and agree["out"]["output_agreement"] >= 0.9


# --------------------------------------------------------------------------- data and CLI
def test_digits_seq_data():
    from atsnn.hwsim.datasets import digits_test_split, load_data
    x, y, _ = load_data("digits-seq", (8,), encoding="sequence")
    xi, yi = digits_test_split()
    assert x.shape == (xi.shape[0], 8, 8) and np.array_equal(y, yi)
    assert np.array_equal(x[:, 3], xi[:, 0, 3, :])  # frame t = image row t
    with pytest.raises(SimulationInputError, match="digits-seq"):
        load_data("digits", (8,), encoding="sequence")
    with pytest.raises(SimulationInputError, match="holds sequences"):
        load_data("digits-seq", (1, 8, 8))


def test_cli_compile_and_simulate(tmp_path, capsys):
    net = psn_network(0, k=3)
    net.input_shape = (8,)
    net.layers[0] = FloatLayer(name="p1", neuron="psn", shape=(6,), bias=np.zeros(6), threshold=np.full(6, 0.5),
                               v_init=np.zeros(6), synapses=[FloatSynapse(
                                   source="input", op="dense", weight=np.random.default_rng(0).normal(0, 0.5, (6, 8)),
                                   input_shape=(8,))],
                               extra={"psn": {"mode": "sliding", "k": 3, "taps": [0.3, 0.6, 1.0]}})
    net.layers = [net.layers[0], FloatLayer(
        name="out", neuron="integrator", shape=(10,), bias=np.zeros(10), threshold=np.ones(10), v_init=np.zeros(10),
        synapses=[FloatSynapse(source="p1", op="dense", weight=np.random.default_rng(1).normal(0, 1, (10, 6)),
                               input_shape=(6,))])]
    export_nir(net, tmp_path / "m.nir")
    assert main(["compile", str(tmp_path / "m.nir"), "-o", str(tmp_path / "prog")]) == 0
    for pol in ("fixed", "dtsnn", "atsn"):
        assert main(["simulate", str(tmp_path / "prog"), "--data", "digits-seq", "--policy", pol, "--samples", "20",
                     "-o", str(tmp_path / f"run_{pol}"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["simulate", str(tmp_path / "prog"), "--data", "digits", "--policy", "fixed",
                 "-o", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "sequence inputs" in err
    assert main(["simulate", str(tmp_path / "prog"), "--data", "digits-seq", "--T", "9",
                 "-o", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "(samples, >= 9, 8)" in err
    # a direct program given sequence data
    from atsnn.workloads.demo import MODEL
    assert main(["compile", str(MODEL), "-o", str(tmp_path / "digits")]) == 0
    capsys.readouterr()
    assert main(["simulate", str(tmp_path / "digits"), "--data", "digits-seq", "-o", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds sequences" in err


# --------------------------------------------------------------------------- functional and analytic modes
def test_functional_and_analytic_modes():
    """The functional run gives the simulator's spikes; the analytic estimate, fed the measured rates, agrees
    with the exact cycles and energy within the bound of tests/test_hwsim_analytic.py; a dense PSN layer's
    update cycles are exact."""
    from atsnn.hwsim.analytic import estimate, rates_from_trace
    from atsnn.hwsim.functional import run_functional
    from test_hwsim_analytic import BOUND
    for seed in (0, 2, 5):
        net = psn_network(seed)
        p = compile_model(net, hw=load_hardware(SMALL), input_max=1.0)
        x = sequences(net, 6, 6, seed)
        tr = simulate(p, x, T=6)
        fr = run_functional(p, x, T=6)
        for name, c in fr.spike_counts.items():
            assert np.array_equal(c, tr.layers[name]["spikes"])
        rates, ev = rates_from_trace(tr)
        assert fr.input_events.mean() == pytest.approx(ev)
        a = estimate(p, rates, 6, input_events_per_timestep=ev)
        exact = evaluate(tr, "fixed")
        assert a.cycles_per_inference == pytest.approx(exact.cycles.mean(), rel=BOUND)
        assert a.energy_per_inference_pj == pytest.approx(exact.energy_pj.mean(), rel=BOUND)


def test_psn_output_layer_refused():
    p = _hand_program()
    p.output = "h"
    with pytest.raises(ProgramFormatError, match="output layer 'h' is a sliding PSN"):
        validate_program(p)
