"""A two-neuron example computed by hand: functional result, counts, cycles and energy (contract sec. 3-8)."""

import numpy as np
import pytest

from atsnn.config import load_hardware
from atsnn.program import AtParams, InputSpec, Layer, Program, Synapse
from compiler.mapping import map_program_layers
from hwsim.engine import simulate
from hwsim.reference import exp_constants


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
