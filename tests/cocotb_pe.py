"""cocotb testbench of the exported PE against hwsim's numpy reference (contract sec. 3-4, 6).

Environment: PE_CYCLES, PE_PROFILE (random | pos_sat | neg_sat | threshold_eq), PE_SEED, HW_PRESET.
"""

import cocotb
from cocotb.triggers import FallingEdge

from cocotb_common import (PeModel, UpdateHandshake, clock_and_reset, draw_acc, issue_acc, issue_load, set_inputs,
                           settings)
from rtl.pe import CMD_NOP, pe_depth


def _config(rng, hw, profile):
    thr = int(rng.integers(1, hw.threshold_max + 1)) if profile != "threshold_eq" else int(rng.integers(1, 64))
    return dict(threshold=thr, leak_shift=int(rng.integers(0, hw.max_leak_shift + 1)),
                bias=int(rng.integers(hw.bias_min, hw.bias_max + 1)) if profile == "random" else int(
                    rng.integers(-50, 50)),
                hard_reset=int(rng.integers(0, 2)), v_reset=int(rng.integers(-100, 100)), strict=int(rng.integers(0, 2)))


@cocotb.test()
async def pe_random(dut):
    hw, n_cycles, profile, rng = settings("PE", "CYCLES", 10000)
    await clock_and_reset(dut, {"cmd": CMD_NOP})
    n_addr = min(8, pe_depth(hw))
    model = PeModel(hw, n_addr)
    pipe = UpdateHandshake()
    cfg = _config(rng, hw, profile)
    updates = 0
    for cyc in range(n_cycles):
        await FallingEdge(dut.clk)
        if pipe.cycle(dut, cyc, cfg):
            continue
        if cyc % 997 == 0:
            cfg = _config(rng, hw, profile)
        set_inputs(dut, cfg)
        r = rng.random()
        addr = int(rng.integers(0, n_addr))
        dut.addr.value = addr
        if r < 0.55:
            issue_acc(dut, model, addr, *draw_acc(rng, hw, profile, model.acc[addr]))
        elif r < 0.9:
            pipe.issue_update(dut, addr, model.update(addr, cfg))
            updates += 1
        elif r < 0.95:
            issue_load(dut, model, addr, int(rng.integers(hw.membrane_min, hw.membrane_max + 1)))
        else:
            dut.cmd.value = CMD_NOP
    assert pipe.checked > 0
    dut._log.info(f"{n_cycles} cycles, {updates} updates, {pipe.checked} results checked, profile {profile}")
