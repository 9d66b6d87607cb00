"""CIFAR-scale topology: builds, compiles onto the default array, and streams weights as the mapping says."""

import numpy as np
import pytest

from atsnn.errors import ConversionError
from atsnn.compiler.pipeline import compile_model
from atsnn.hwsim.engine import simulate
from atsnn.workloads.topologies import build, synthetic_images


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


def test_unknown_topology_says_so():
    with pytest.raises(ConversionError, match="unknown topology 'alexnet'"):
        build("alexnet")


# seed 004 Table 1: layer -> output (C, H, W)
YOLO_TABLE1 = {"Conv1": (16, 416, 416), "Conv2": (16, 208, 208), "Conv3": (32, 208, 208), "Conv4": (32, 104, 104),
               "Conv5": (64, 104, 104), "Conv6": (64, 52, 52), "Conv7": (128, 52, 52), "Conv8": (128, 26, 26),
               "Conv9": (256, 26, 26), "Conv10": (256, 13, 13), "Conv11": (512, 13, 13), "Conv12": (1024, 13, 13),
               "Conv13": (256, 13, 13), "Conv14": (512, 13, 13), "Conv15": (255, 13, 13), "Conv16": (128, 13, 13),
               "ConvTranspose1": (128, 26, 26), "Conv17": (256, 26, 26), "Conv18": (255, 26, 26)}


@pytest.fixture(scope="module")
def yolo():
    net = build("yolov3-tiny")
    return net, compile_model(net)


def test_yolov3_tiny_follows_table1(yolo):
    net, p = yolo
    assert {l.name: tuple(l.shape) for l in net.layers} == YOLO_TABLE1
    ct = net.layer("ConvTranspose1").synapses
    assert [s.op for s in ct] == ["conv_transpose2d"] and ct[0].stride == (2, 2)
    assert [s.stride for s in net.layer("Conv2").synapses] == [(2, 2)]  # stride-2 conv instead of max-pool
    # the route: ConvTranspose1 (128 ch) then Conv9 (256 ch) concatenated into Conv17
    assert [(s.source, s.weight.shape[1]) for s in net.layer("Conv17").synapses] == [("ConvTranspose1", 128),
                                                                                    ("Conv9", 256)]
    heads = [l.name for l in p.layers if l.neuron == "integrator"]
    assert heads == ["Conv15", "Conv18"] and not p.early_exit and p.output == "Conv18"
    assert all(l.mapping.unit == "pe" for l in p.layers)
    assert any(l.mapping.spikes_in_dram for l in p.layers)  # 7 M neurons of spike maps exceed the 256 KB GLB
    assert any("output heads" in w for w in p.report["warnings"])


def test_yolov3_tiny_functional_rates_and_analytic_estimate(yolo):
    from atsnn.hwsim.analytic import estimate
    from atsnn.hwsim.functional import run_functional
    from atsnn.workloads.topologies import YOLO_INPUT
    _, p = yolo
    run = run_functional(p, synthetic_images(1, 3, YOLO_INPUT), T=4)
    rates = run.rates(p)
    assert 0.05 <= float(np.mean(list(rates.values()))) <= 0.3  # seed 004 regime: realistic firing
    e64 = estimate(p, rates, 64, input_events_per_timestep=float(run.input_events.mean()))
    e2048 = estimate(p, rates, 2048, input_events_per_timestep=float(run.input_events.mean()))
    assert e64.sampled and e64.fps > 0
    assert e2048.energy_per_inference_pj == pytest.approx(32 * e64.energy_per_inference_pj, rel=0.01)
    assert e64.energy_by_component_pj["at_unit"] == 0.0  # detection heads: no AT unit work


@pytest.mark.slow
def test_yolov3_tiny_from_the_command_line(tmp_path, capsys):
    """`atsnn topology` writes the NIR file, `atsnn compile` maps it, `atsnn estimate --data` measures and estimates."""
    import json

    from atsnn.cli import main
    nir_file, prog = tmp_path / "yolo.nir", tmp_path / "prog"
    assert main(["topology", "yolov3-tiny", "-o", str(nir_file)]) == 0
    assert "outputs Conv15, Conv18" in capsys.readouterr().out
    assert main(["compile", str(nir_file), "-o", str(prog)]) == 0
    out = capsys.readouterr().out
    assert "early exit on the AT unit: no" in out and "2 output heads" in out
    assert main(["estimate", str(prog), "--data", "synthetic", "--samples", "1", "--measure-T", "4",
                 "--T", "64", "2048", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["T"] for r in rows] == [64, 2048] and rows[0]["sampled_statistics"]
    assert 0.05 < np.mean(list(rows[0]["rates"].values())) < 0.3
    assert rows[1]["energy_per_inference_uj"] > 30 * rows[0]["energy_per_inference_uj"]
