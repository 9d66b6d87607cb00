"""cocotb testbench of the exported PE against hwsim's numpy reference (contract sec. 3-4, 6).

Environment: PE_CYCLES, PE_PROFILE (random | pos_sat | neg_sat | threshold_eq), PE_SEED, HW_PRESET.
"""

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from cocotb_common import clock_and_reset, settings
from hwsim.reference import neuron_update
from rtl.pe import CMD_ACC, CMD_LOAD, CMD_NOP, CMD_UPDATE, pe_depth


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
    v = [0] * n_addr
    acc = [0] * n_addr
    cfg = _config(rng, hw, profile)
    busy = False
    valid = False
    pending = None
    expect = None
    updates = checked = 0
    for cyc in range(n_cycles):
        await FallingEdge(dut.clk)
        assert int(dut.ready.value) == (0 if busy else 1), f"cycle {cyc}: ready"
        assert int(dut.valid.value) == (1 if valid else 0), f"cycle {cyc}: valid"
        if valid:
            got = (dut.v_out.value.to_signed(), int(dut.spike.value), int(dut.sat_hi.value), int(dut.sat_lo.value))
            assert got == expect, f"cycle {cyc}: got {got}, expected {expect} (config {cfg})"
            checked += 1
        valid = False
        if busy:  # second update cycle finishes now
            busy, valid, expect = False, True, pending
            dut.cmd.value = CMD_NOP
            continue
        if cyc % 997 == 0:
            cfg = _config(rng, hw, profile)
        for k_, val in cfg.items():
            getattr(dut, k_).value = val
        r = rng.random()
        addr = int(rng.integers(0, n_addr))
        dut.addr.value = addr
        if r < 0.55:
            if profile == "pos_sat":
                w = int(rng.integers(hw.weight_max - 20, hw.weight_max + 1))
            elif profile == "neg_sat":
                w = int(rng.integers(hw.weight_min, hw.weight_min + 20))
            else:
                w = int(rng.integers(hw.weight_min, hw.weight_max + 1))
            k = int(rng.integers(0, hw.numeric.input_bits))
            if abs(acc[addr] + (w << k)) > hw.accumulator_max // 2:  # keep the contract's no-overflow guarantee
                k = 0
                w = -np.sign(acc[addr]) * abs(w)
            dut.cmd.value = CMD_ACC
            dut.w.value = int(w)
            dut.k.value = k
            acc[addr] += int(w) << k
        elif r < 0.9:
            dut.cmd.value = CMD_UPDATE
            vn, z, hi, lo = neuron_update(np.array([v[addr]]), np.array([acc[addr]]), cfg["bias"],
                                          threshold=cfg["threshold"], leak_shift=cfg["leak_shift"],
                                          reset="to_value" if cfg["hard_reset"] else "subtract",
                                          v_reset=cfg["v_reset"], comparator=">" if cfg["strict"] else ">=",
                                          vmin=hw.membrane_min, vmax=hw.membrane_max)
            pending = (int(vn[0]), int(z[0]), int(hi[0]), int(lo[0]))
            v[addr], acc[addr] = int(vn[0]), 0
            busy = True
            updates += 1
        elif r < 0.95:
            val = int(rng.integers(hw.membrane_min, hw.membrane_max + 1))
            dut.cmd.value = CMD_LOAD
            dut.w_data.value = val
            v[addr], acc[addr] = val, 0
        else:
            dut.cmd.value = CMD_NOP
    assert checked > 0
    dut._log.info(f"{n_cycles} cycles, {updates} updates, {checked} results checked, profile {profile}")
