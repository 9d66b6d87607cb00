"""cocotb testbench of the array top: load ARRAY_LOAD once, then run a compiled Program on ARRAY_INPUTS.

ARRAY_LOAD is an ``.npy`` of ``(cfg_addr, cfg_data)`` rows (``atsnn.rtl.array.load_stream``), written
through the configuration port one word per cycle before the first input; the cycles the load
took (``busy`` must stay low) go into ARRAY_RESULTS next to each input's results.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from atsnn.program import load_program
from cocotb_common import clock_and_reset


@cocotb.test()
async def array_run(dut):
    program = load_program(os.environ["ARRAY_PROGRAM"])
    hw = program.hardware
    data = np.load(os.environ["ARRAY_INPUTS"])
    x, T = data["x"], int(data["T"])
    cl_init, tau = float(data["cl_init"]), float(data["tau"])
    use_exit = int(data["use_exit"])
    q = hw.at.cl_frac_bits
    await clock_and_reset(dut, {"start": 0, "in_we": 0, "cfg_we": 0})
    load_cycles = 0
    for addr, word in np.load(os.environ["ARRAY_LOAD"]).tolist():
        dut.cfg_we.value = 1
        dut.cfg_addr.value = addr
        dut.cfg_data.value = word
        await FallingEdge(dut.clk)
        assert not int(dut.busy.value), "busy while loading"
        load_cycles += 1
    dut.cfg_we.value = 0
    results = []
    for s in range(x.shape[0]):
        for i, v in enumerate(x[s].ravel()):
            dut.in_we.value = 1
            dut.in_addr.value = i
            dut.in_data.value = int(v)
            await FallingEdge(dut.clk)
        dut.in_we.value = 0
        dut.timesteps.value = T
        dut.use_exit.value = use_exit
        dut.cl_init.value = int(round(cl_init * (1 << q)))
        dut.tau.value = int(round(tau * (1 << q)))
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0
        for _ in range(2_000_000):
            await FallingEdge(dut.clk)
            if int(dut.done.value):
                break
        n_layers = sum(1 for l in program.layers if l.mapping.unit == "pe")
        counts = [int(getattr(dut, f"spike_count{k}").value) for k in range(n_layers)]
        results.append([int(dut.result_class.value), int(dut.exit_t.value), int(dut.cycles.value), counts])
    with open(os.environ["ARRAY_RESULTS"], "w") as f:
        json.dump({"load_cycles": load_cycles, "results": results}, f)
