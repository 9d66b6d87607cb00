"""Array top running the compiled digits MLP and CNN: class, exit timestep, spikes per layer and cycles vs hwsim.

The parameters go in through the configuration port once per simulation (``atsnn.rtl.array.load_stream``),
then the images run. The RTL cycle counter minus the controller's bookkeeping cycles (docs/rtl.md,
written out here in :func:`_bookkeeping`, not taken from ``atsnn.rtl.array``) must equal two independent
schedules: hwsim's simulator (its cycles minus the input load, which the host does before
``start``) and contract sec. 6 applied here to atsnn.hwsim.reference's per-layer compute cycles. A
one-bit change in the load stream must fail the checks.
"""

import json
import os
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from atsnn.config import load_hardware
from atsnn.program import save_program
from atsnn.compiler.pipeline import compile_model
from atsnn.hwsim.datasets import digits_test_split
from atsnn.hwsim.engine import simulate
from atsnn.hwsim.inputs import quantize_input
from atsnn.hwsim.policies import evaluate
from atsnn.hwsim.reference import reference_run
from atsnn.rtl.array import PE_PAIR, ArrayTop, array_layout, load_stream
from atsnn.rtl.export import verilog_text, write_if_changed
from atsnn.workloads.demo import MLP_MODEL, MODEL

pytestmark = pytest.mark.cosim
T, CL, TAU = 6, 0.999, 0.999

#: Verilator options of the array builds. cocotb's runner passes ``--public-flat-rw``, which keeps every
#: signal of every PE visible to VPI, so Verilator can neither drop nor merge any of them (the 16x16
#: CNN's C++ was 5x larger and its simulation several times slower); it is turned off again and only the
#: top's ports, all the testbench touches, are made public by a control file (:func:`_ports_vlt`). The
#: C++ is split into files of about 10,000 statements (functions of 2,000) that ``make -j`` compiles in
#: parallel.
BUILD_ARGS = ["-Wno-fatal", "-Wno-WIDTH", "--no-public-flat-rw",
              "--output-split", "10000", "--output-split-cfuncs", "2000"]
#: make variables of the array builds: the model's per-cycle code at -O1, its initialisation code at -O0
#: (16x16 CNN, 2 cores: -O0 compiles in 13 s and runs in 23 s, -O1 22 s and 8 s, -Os 28 s and 9 s); the
#: PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a split build would pass the
#: precompiled header as an input file and fail (``Vtop__pch.h.fast: linker input file not found``).
MAKEFLAGS = "OPT_FAST=-O1 OPT_SLOW=-O0 CFG_CXXFLAGS_PCH_I=-include"


def _ports_vlt(top: ArrayTop) -> str:
    """Verilator control file making the top's ports (and only them) public for cocotb's VPI access."""
    ports = list(top.signature.members) + ["clk", "rst"]
    return "`verilator_config\n" + "".join(f'public_flat_rw -module "atsnn_array" -var "{name}"\n'
                                            for name in ports)


def _build(build_root, preset, model):
    """(program, layout, runner, build_dir): the array top for ``model`` on ``preset``, built by Verilator."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed for Verilator")
    from cocotb_tools.runner import get_runner
    program = compile_model(model, hw=load_hardware(preset))
    layout = array_layout(program)
    src_dir = build_root / "rtl"
    src_dir.mkdir(parents=True, exist_ok=True)
    tag = f"{preset}-{model.stem}"
    top = ArrayTop(program, layout)
    src, vlt = src_dir / f"array-{tag}.v", src_dir / f"array-{tag}.vlt"
    write_if_changed(src, verilog_text(top, "atsnn_array"))
    write_if_changed(vlt, _ports_vlt(top))
    build_dir = build_root / f"sim-array-{tag}"
    runner = get_runner("verilator")
    with mock.patch.dict(os.environ, {"MAKEFLAGS": MAKEFLAGS}):
        runner.build(sources=[vlt, src], hdl_toplevel="atsnn_array", build_dir=build_dir, build_args=BUILD_ARGS,
                     timescale=("1ns", "1ps"))
    return program, layout, runner, build_dir


def _cosim(built, tmp_path, xq, stream) -> dict:
    """Load ``stream`` through the configuration port, run the inputs ``xq``; the testbench's results."""
    program, _, runner, build_dir = built
    save_program(program, tmp_path / "prog")
    np.savez(tmp_path / "in.npz", x=xq, T=T, cl_init=CL, tau=TAU, use_exit=1)
    np.save(tmp_path / "load.npy", np.asarray(stream, dtype=np.int64).reshape(-1, 2))
    tests_dir = Path(__file__).parent
    runner.test(hdl_toplevel="atsnn_array", test_module="cocotb_array", build_dir=build_dir, test_dir=tmp_path,
                extra_env={"ARRAY_PROGRAM": str(tmp_path / "prog"), "ARRAY_INPUTS": str(tmp_path / "in.npz"),
                           "ARRAY_LOAD": str(tmp_path / "load.npy"), "ARRAY_RESULTS": str(tmp_path / "res.json"),
                           "COCOTB_REWRITE_ASSERTION_FILES": "cocotb_*.py",
                           "PYTHONPATH": os.pathsep.join([str(tests_dir), str(tests_dir.parent)])})
    return json.loads((tmp_path / "res.json").read_text())


def _bookkeeping(program, exit_t: int) -> int:
    """The controller's bookkeeping cycles on top of the contract's schedule, as docs/rtl.md states
    them (with the exit test on): per timestep one cycle per synapse (PE layers and the output
    layer) to find its event list empty and two around the exit test; one between timesteps."""
    synapses = sum(len(l.synapses) for l in program.layers)
    return (synapses + 2) * exit_t + (exit_t - 1)


def _contract_cycles(program, ref, trace, s: int, exit_t: int) -> int:
    """Contract sec. 6 for sample ``s`` up to ``T_hat = exit_t`` (without the input load), from
    atsnn.hwsim.reference's per-layer compute cycles: per timestep each PE layer's ``compute +
    layer_overhead`` (its stall must be 0: the programs are state resident; checked on hwsim's
    trace), the output layer's compute (events and ``at_update * C``) and ``at_exp * C +
    at_decision``."""
    cyc = program.hardware.cycles
    C = program.output_layer.neurons
    total = 0
    for t in range(exit_t):
        for l in program.layers:
            assert trace.layers[l.name]["stall_cycles"][s, t] == 0, f"{l.name}: stall at t={t + 1}"
            total += int(ref.compute_cycles[l.name][s, t])
            total += cyc.layer_overhead if l.mapping.unit == "pe" else 0
        total += cyc.at_exp * C + cyc.at_decision
    return total


def _check(program, xq, results) -> None:
    """Class, exit timestep and spikes per layer equal hwsim's; cycles minus the bookkeeping equal
    both hwsim's schedule and contract sec. 6 on the reference's compute cycles."""
    ref = reference_run(program, xq, T, cl_init=CL, tau_cl=TAU)
    trace = simulate(program, xq, T=T, already_quantized=True)
    hws = evaluate(trace, "atsn", cl_init=CL, tau_cl=TAU)
    hidden = [l for l in program.layers if l.mapping.unit == "pe"]
    assert program.output_layer.mapping.unit == "at" and program.at is not None
    assert len(results) == len(xq)
    for s, (cls, et, cycles, counts) in enumerate(results):
        e = int(ref.exit_t[s])
        assert et == e == hws.exit_t[s], f"sample {s}: exit timestep"
        assert cls == int(ref.u[s, e - 1].argmax()) == hws.predicted[s], f"sample {s}: class"
        assert counts == [int(ref.spike_counts[l.name][s, :e].sum()) for l in hidden], f"sample {s}: spikes"
        schedule = cycles - _bookkeeping(program, e)
        simulator = int(hws.cycles[s]) - trace.input_load_cycles
        assert schedule == simulator, f"sample {s}: RTL schedule {schedule}, hwsim {simulator}"
        contract = _contract_cycles(program, ref, trace, s, e)
        assert schedule == contract, f"sample {s}: RTL schedule {schedule}, sec. 6 {contract}"


def _inputs(program, n):
    x, _ = digits_test_split()
    return quantize_input(program, x[:n])


def _run(build_root, tmp_path, preset, n, model=MLP_MODEL):
    built = _build(build_root, preset, model)
    program = built[0]
    xq = _inputs(program, n)
    stream = load_stream(program, built[1])
    res = _cosim(built, tmp_path, xq, stream)
    assert res["load_cycles"] == len(stream)
    _check(program, xq, res["results"])
    return len(res["results"])


def test_array_small_50_images(build_root, tmp_path):
    assert _run(build_root, tmp_path, "atsnn28-small", 50) == 50


def test_array_small_cnn_50_images(build_root, tmp_path):
    """The demo CNN: convolutions, padding, sum-pools and a pooled, flattened output layer."""
    assert _run(build_root, tmp_path, "atsnn28-small", 50, MODEL) == 50


def test_array_one_flipped_weight_bit_fails(build_root, tmp_path):
    """Flip the sign bit of one loaded weight word (the largest first-layer weight of the pixel
    brightest over 20 images, 127, which becomes -1: the neuron it drives most loses that drive): the same
    build must then fail the checks. (Flipping the most negative weight to +1 can go unseen: the
    neuron it inhibits may stay silent either way.)"""
    built = _build(build_root, "atsnn28-small", MLP_MODEL)
    program, layout = built[0], built[1]
    xq = _inputs(program, 20)
    stream = load_stream(program, layout)
    pixel = int(np.argmax(xq.reshape(len(xq), -1).sum(axis=0)))  # brightest on average; first phase
    p, i = max(((p, layout.conn_off[p][pixel] + q) for p in range(program.hardware.pe_count)
                for q in range(layout.conn_cnt[p][pixel])), key=lambda pi: layout.pair_w[pi[0]][pi[1]])
    assert layout.pair_w[p][i] > 0
    addr = layout.address(p, PE_PAIR, i)
    fields = dict(layout.pe_words()[PE_PAIR])
    sign_bit = fields["neuron"].width + fields["weight"].width - 1  # the weight field follows the neuron field
    w = next(w for w, (a, _) in enumerate(stream) if a == addr)
    stream[w] = (addr, stream[w][1] ^ (1 << sign_bit))
    res = _cosim(built, tmp_path, xq, stream)
    with pytest.raises(AssertionError):
        _check(program, xq, res["results"])


@pytest.mark.slow
def test_array_16x16_5_images(build_root, tmp_path):
    """The full 255-PE array running the digits MLP."""
    assert _run(build_root, tmp_path, "atsnn28", 5) == 5


@pytest.mark.slow
def test_array_16x16_cnn_5_images(build_root, tmp_path):
    """The full 255-PE array running the digits CNN (205,914 load words, then the images)."""
    assert _run(build_root, tmp_path, "atsnn28", 5, MODEL) == 5


@pytest.mark.parametrize("seed", range(4))
def test_connection_lists_match_the_simulator_tables(seed):
    """The array's per-PE connection counts are hwsim's lockstep table (no cosimulation needed)."""
    from atsnn.hwsim.tables import build_layer_table
    from netgen import random_network
    from atsnn.rtl.array import synapse_matrices
    program = compile_model(random_network(seed), input_max=1.0)
    for layer in program.layers:
        if layer.mapping.unit != "pe":
            continue
        table = build_layer_table(layer)
        starts = np.concatenate([[0], np.cumsum(layer.mapping.chunk_sizes)[:-1]])
        for syn, st in zip(layer.synapses, table.synapses):
            reach, _ = synapse_matrices(program, layer, syn)
            per_pe = np.stack([reach[:, a:a + n].sum(axis=1) for a, n in zip(starts, layer.mapping.chunk_sizes)])
            if syn.op == "dense":
                assert (per_pe == st.conn[0]).all()
            else:  # tables are per spatial position (every input channel reaches the same neurons)
                cin = syn.input_shape[0]
                if syn.pool is None:
                    np.testing.assert_array_equal(per_pe.reshape(len(starts), cin, -1)[:, 0], st.conn[0])


def test_rtl_export_program_writes_a_lint_clean_array_and_its_load_stream(tmp_path, capsys):
    """`atsnn rtl export --program` writes the array top (verilator --lint-only clean) and its load stream."""
    from atsnn.cli import main
    program = compile_model(MLP_MODEL, hw=load_hardware("atsnn28-small"))
    save_program(program, tmp_path / "prog")
    assert main(["rtl", "export", "--program", str(tmp_path / "prog"), "-o", str(tmp_path / "v")]) == 0
    assert "atsnn_array.v  (verilator --lint-only: clean)" in capsys.readouterr().out
    lines = (tmp_path / "v" / "atsnn_array.load.txt").read_text().splitlines()
    words = [tuple(int(f, 16) for f in line.split()) for line in lines if not line.startswith("//")]
    assert words == load_stream(program)
