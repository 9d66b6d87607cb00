"""CIFAR-scale topology: builds, compiles onto the default array, and streams weights as the mapping says."""

import numpy as np
import pytest

from atsnn.errors import ConversionError
from compiler.pipeline import compile_model
from hwsim.engine import simulate
from workloads.topologies import build, synthetic_images


@pytest.mark.slow
def test_vgg16_compiles_and_runs():
    net = build("vgg16")
    assert sum(l.neuron == "if" for l in net.layers) == 14 and net.decisions["synthetic_weights"]
    p = compile_model(net)
    assert p.early_exit and p.output_layer.mapping.unit == "at"
    assert any(l.mapping.weights_in_dram for l in p.layers)  # 15 M weights cannot stay on chip
    tr = simulate(p, synthetic_images(2, 1), T=2, batch_size=2)
    rates = [tr.layers[l.name]["spikes"].mean() / l.neurons for l in p.layers if l.neuron == "if"]
    assert 0.02 < float(np.mean(rates)) < 0.3  # balanced thresholds: realistic firing
    assert all(tr.layers[l.name]["dram_bytes"].sum() > 0 for l in p.layers if l.mapping.weights_in_dram)


@pytest.mark.parametrize("name, depth", [("resnet20", 20), ("resnet19", 19)])
def test_resnets_compile_with_residual_synapses(name, depth):
    net = build(name)
    p = compile_model(net)
    assert len(p.layers) == depth and p.early_exit
    assert sum(len(l.synapses) == 2 for l in p.layers) >= 8  # every basic block adds its shortcut
    tr = simulate(p, synthetic_images(1, 2), T=4)
    rates = [tr.layers[l.name]["spikes"].mean() / l.neurons for l in p.layers if l.neuron == "if"]
    assert 0.02 < float(np.mean(rates)) < 0.3


def test_unsupported_topologies_say_so():
    with pytest.raises(ConversionError, match="transposed convolutions"):
        build("yolov3-tiny")
    with pytest.raises(ConversionError, match="unknown topology"):
        build("alexnet")
