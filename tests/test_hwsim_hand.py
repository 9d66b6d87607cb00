"""A two-neuron example computed by hand: functional result, counts, cycles and energy (contract sec. 3-8)."""

import numpy as np
import pytest

from atsnn.config import load_hardware
from atsnn.program import AtParams, InputSpec, Layer, Program, Synapse
from atsnn.compiler.mapping import map_program_layers
from atsnn.hwsim.engine import simulate
from atsnn.hwsim.reference import exp_constants


def _program():
    hw = load_hardware("atsnn28-small")
    h = Layer(name="h", neuron="if", shape=(2,), bias=np.zeros(2, int), threshold=4, v_init=np.zeros(2, int),
              synapses=[Synapse(source="input", op="dense", weight=np.array([[3, -1], [2, 2]]), input_shape=(2,),
                                max_input=255)])
    o = Layer(name="o", neuron="integrator", shape=(2,), bias=np.zeros(2, int), threshold=0, v_init=np.zeros(2, int),
              synapses=[Synapse(source="h", op="dense", weight=np.eye(2, dtype=int), input_shape=(2,))])
    layers = [h, o]
    early = map_program_layers(layers, "o", hw)
    m, d = exp_constants(hw, 1.0)
    return Program(name="two", hardware=hw, input=InputSpec(shape=(2,), scale=1.0), layers=layers, output="o",
                   early_exit=early, at=AtParams(exp_mult=m, d_clip=d))


def test_two_neurons_by_hand():
    p = _program()
    tr = simulate(p, np.array([[1, 2]]), T=1, already_quantized=True)
    h, o = tr.layers["h"], tr.layers["o"]
    # accumulate: x = [1, 2] -> events (x0 bit0), (x1 bit1); a = W @ x = [3 - 2, 2 + 4] = [1, 6]
    # update: v = [1, 6]; 6 >= 4 fires, soft reset -> [1, 2]; AT integrates the spike: u = [0, 1]
    assert tr.u[0, 0].tolist() == [0, 1]
    assert h["events"][0, 0] == 2 and h["synops"][0, 0] == 4 and h["spikes"][0, 0] == 1
    assert o["events"][0, 0] == 1 and o["synops"][0, 0] == 2
    # cycles (atsnn28-small: event 1, synop 1, update 2, overhead 8, at_update 1):
    # h: 2 events x (1 + 1 x 1 neuron per PE) + 2 x 1 neuron + 8 = 14; AT: 1 x (1 + 1 x 2) + 1 x 2 = 5
    assert h["compute_cycles"][0, 0] == 6 and h["stall_cycles"][0, 0] == 0 and h["cycles"][0, 0] == 14
    assert o["cycles"][0, 0] == 5
    # energy of h (sata28-500mhz), per byte = access energy / port bytes:
    # buffers: 4 deliveries x 2 B x (0.0713 + 0.0596) + 2/8 B x (0.0713 + 0.0596)       = 1.079925
    # memory: 4 synops x (1 B x 0.3452/2 + 3 B x (0.3452 + 0.2638)/2)
    #         + 2 neurons x 5 B x (0.3452 + 0.2638)/2                                       = 7.3894
    # logic: 4 x add32 0.152 + 2 x (2 x 0.152 + 3 x cmp16 0.0391) + 1 reset x add16 0.0734 = 1.524
    # GLB: read 2 B x 11.03/32 + write 1 B x 12.77/32                                      = 1.0884375
    assert h["energy_spike_buffers"][0, 0] == pytest.approx(1.079925)
    assert h["energy_pe_memory"][0, 0] == pytest.approx(7.3894)
    assert h["energy_pe_logic"][0, 0] == pytest.approx(1.524)
    assert h["energy_glb"][0, 0] == pytest.approx(1.0884375)
    assert h["energy_dram"][0, 0] == 0 and h["energy_at_unit"][0, 0] == 0


def test_at_unit_energy_and_exit_test_energy_by_hand():
    p = _program()
    assert p.layer("o").mapping.unit == "at" and p.layer("o").mapping.weights_resident
    tr = simulate(p, np.array([[1, 2]]), T=1, already_quantized=True)
    # the output layer on the AT unit (sata28-500mhz; 24-bit AT membrane and accumulator = 3 B each):
    # buffers: 1 delivery x 2 B x (0.0713 + 0.0596) + 2/8 B x (0.0713 + 0.0596)             = 0.294525
    # memory (at_data_memory, 4 B port): 2 synops x (1 B x 0.8727/4 + 3 B x (0.8727 + 0.6407)/4)
    #         + 2 neurons x (3 + 3) B x (0.8727 + 0.6407)/4 (state read and written)    = 7.24665
    # logic: 2 synops x add32 0.152 + 2 neurons x (2 x add32 + 2 x compare32 0.085)          = 1.252
    assert tr.layers["o"]["energy_at_unit"][0, 0] == pytest.approx(8.793175)
    from atsnn.hwsim.policies import evaluate
    # exit test per timestep, 2 classes: per class 2 x mul32 5.572 (24 x 16 bit) + 2 exp-table reads
    # 0.8727 + 2 x add16 0.0734 + add32 0.152 = 13.1882; per step 2 x mul32 + compare32 = 11.229
    atsn = evaluate(tr, "atsn", cl_init=0.9, tau_cl=0.9)
    assert atsn.energy_by_component["at_unit"][0] == pytest.approx(8.793175 + 2 * 13.1882 + 11.229)
    # DTSNN: per class 2 x LUT read 1.7454 + 2 x mul16 1.022 + 2 x add32; per step compare32
    dtsnn = evaluate(tr, "dtsnn", theta=0.5)
    assert dtsnn.energy_by_component["at_unit"][0] == pytest.approx(8.793175 + 2 * 5.8388 + 0.085)
    # cycles: h 14 + AT 5 + input load ceil(2 B / 25.6) = 1 -> 20; exit test + at_exp 3 x 2 + 4 = 10
    fixed = evaluate(tr, "fixed")
    assert fixed.cycles[0] == 20 and atsn.cycles[0] == 30 and dtsnn.cycles[0] == 30
    # leakage, atsnn28-small (15 PEs, 1 AT unit, 8 GLB banks), mW:
    # PE: 0.4318 + 2 x 0.0627 + 2 x 3.5e-5 + 3 x 1.82e-5 + 2 x 4.02e-5           = 0.557405
    # AT: 1.1587 + 2 x 0.0627 + 2 x 2.79e-4 + 2 x 3.5e-5 + 1.82e-5 + 2 x 4.02e-5 = 1.2848266
    # 15 x 0.557405 + 1.2848266 + 8 x 6.26 = 59.7259016 mW; over 20 cycles at 500 MHz = 40 ns
    assert fixed.energy_by_component["leakage"][0] == pytest.approx(59.7259016e-3 * 40e-9 * 1e12)
    assert dtsnn.energy_by_component["leakage"][0] == pytest.approx((59.7259016 + 2.3174) * 1e-3 * 60e-9 * 1e12)


def test_stalled_layer_cycles_and_bytes_by_hand():
    """60 inputs: 2 x 60 weights + 5 B of state exceed a 64 B PE memory, so h streams its weights."""
    hw = load_hardware("atsnn28-small").replace(pe={"data_memory_bytes": 64},
                                                memory={"glb_bandwidth_bytes_per_cycle": 8})
    w = np.zeros((2, 60), dtype=int)
    w[:, :2] = [[3, -1], [2, 2]]
    h = Layer(name="h", neuron="if", shape=(2,), bias=np.zeros(2, int), threshold=4, v_init=np.zeros(2, int),
              synapses=[Synapse(source="input", op="dense", weight=w, input_shape=(60,), max_input=255)])
    o = Layer(name="o", neuron="integrator", shape=(2,), bias=np.zeros(2, int), threshold=0, v_init=np.zeros(2, int),
              synapses=[Synapse(source="h", op="dense", weight=np.eye(2, dtype=int), input_shape=(2,))])
    map_program_layers([h, o], "o", hw)
    m = h.mapping
    assert not m.weights_resident and not m.weights_in_dram and m.passes == 1
    assert m.streamed_weight_bytes_per_timestep == 120
    p = Program(name="stall", hardware=hw, input=InputSpec(shape=(60,), scale=1.0), layers=[h, o], output="o",
                early_exit=False, at=None)
    x = np.zeros((1, 60), dtype=int)
    x[0, :2] = [1, 2]
    tr = simulate(p, x, T=2, already_quantized=True)
    r = tr.layers["h"]
    # per timestep: GLB read 60 B image + min(4 synops x 1 B, 120) = 4 B weights, write 1 B spike map;
    # transfer ceil(65 / 8) = 9 cycles against compute 6 -> stall 3; layer 6 + 3 + 8 = 17
    assert r["glb_bytes"].tolist() == [[65, 65]] and r["dram_bytes"].tolist() == [[0, 0]]
    assert r["compute_cycles"].tolist() == [[6, 6]] and r["stall_cycles"].tolist() == [[3, 3]]
    assert r["cycles"].tolist() == [[17, 17]]
    # streamed weights are not read from the PE memory: 4 synops x 3 B acc rw + 2 x 5 B state rw
    assert r["energy_pe_memory"][0, 0] == pytest.approx(4 * 3 * 0.6090 / 2 + 2 * 5 * 0.6090 / 2)
    assert r["energy_glb"][0, 0] == pytest.approx(64 * 11.03 / 32 + 1 * 12.77 / 32)
    from atsnn.hwsim.policies import evaluate
    # input load ceil(60 B / 25.6) = 3 cycles, once per inference
    assert evaluate(tr, "fixed").cycles[0] == 3 + 2 * (17 + tr.layers["o"]["cycles"][0, 0])


def _fake_trace(p, u):
    from types import SimpleNamespace
    return SimpleNamespace(program=p, u=np.asarray(u, dtype=np.int64), T=len(u[0]))


def test_atsn_interior_exit_by_hand():
    p = _program()
    hw = p.hardware
    from atsnn.hwsim.policies import atsn_exit
    from atsnn.hwsim.reference import cl_sequence
    from atsnn.hwsim.reference_costs import atsn_exit_reference
    # CL_1 = round(0.9 x 2**16) = 58982, tau = 49152: 44236, 33177, 24882, 18661 (floor of x 0.75)
    assert cl_sequence(0.9, 0.75, 5, hw).tolist() == [58982, 44236, 33177, 24882, 18661]
    # sample 0: two tied classes every step, S = 2 x ONE: exit when CL_t x 65536 < 2**31, CL_t < 32768,
    # first at t = 4. sample 1: class 1 ahead by 20 > d_clip = 12 at t = 2: S = ONE, exit at t = 2.
    # sample 2: tied throughout and T = 3 < 4: runs to T.
    u = [[[5, 5]] * 6, [[1, 1], [0, 20], [0, 20], [0, 20], [0, 20], [0, 20]]]
    for f in (atsn_exit, None):
        got = (atsn_exit(_fake_trace(p, u), 0.9, 0.75) if f else
               atsn_exit_reference(p, np.asarray(u), 0.9, 0.75))
        assert got.tolist() == [4, 2]
    assert atsn_exit(_fake_trace(p, [[[5, 5]] * 3]), 0.9, 0.75).tolist() == [3]


def test_dtsnn_interior_exit_by_hand():
    p = _program()
    from atsnn.hwsim.policies import dtsnn_exit
    from atsnn.hwsim.reference_costs import dtsnn_exit_reference
    # 2 classes, scale 1: H(d) = binary entropy of sigmoid(d) / ln 2 for z = u / t with gap d;
    # t = 1: u = [1, 0], d = 1, H = 0.840; t = 2: u = [4, 0], d = 2, H = 0.527; t = 3: u = [9, 0],
    # d = 3, H = 0.275 < 0.5 -> exit at 3 (without the division by t, d = 4 at t = 2 would exit there)
    u = [[[1, 0], [4, 0], [9, 0], [9, 0]]]
    assert dtsnn_exit(_fake_trace(p, u), 0.5).tolist() == [3]
    assert dtsnn_exit_reference(p, np.asarray(u), 0.5).tolist() == [3]
    assert dtsnn_exit(_fake_trace(p, u), 0.3).tolist() == [3]
    assert dtsnn_exit(_fake_trace(p, u), 0.2).tolist() == [4]  # never below 0.2 before T
