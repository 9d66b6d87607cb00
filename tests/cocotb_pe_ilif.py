"""cocotb testbench of the exported iLIF PE (``atsnn_pe_ilif``) against hwsim's numpy references.

Every UPDATE's membrane, spike and saturation flags are checked against
:func:`atsnn.hwsim.ilif_reference.ilif_accumulate` / ``ilif_fire`` (iLIF mode) or
:func:`atsnn.hwsim.reference.neuron_update` (IF/LIF mode), and every cycle's ``ready``/``valid`` timing
and every ACC's accumulator read-back (``acc_out``) against the model.

Environment: PE_CYCLES, PE_PROFILE (random | pos_sat | neg_sat | threshold_eq | corners), PE_SEED,
HW_PRESET (preset name or TOML path). ``corners`` runs a directed list first (doubling exactly to
the threshold, to membrane_max + 1 and membrane_min, extreme thresholds, accumulator and bias
extremes, both comparators), then random cycles.
"""

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from cocotb_common import (PeModel, UpdateHandshake, clock_and_reset, draw_acc, issue_acc, issue_load, set_inputs,
                           settings, update_result)
from atsnn.rtl.pe import CMD_NOP, CMD_UPDATE, pe_depth


def _config(rng, hw, profile):
    small = profile == "threshold_eq"
    thr = int(rng.integers(1, 64)) if small else int(rng.choice([rng.integers(1, hw.threshold_max + 1),
                                                                   rng.integers(1, hw.membrane_max // 2 + 1)]))
    return dict(threshold=thr, leak_shift=int(rng.integers(0, hw.max_leak_shift + 1)),
                bias=int(rng.integers(hw.bias_min, hw.bias_max + 1)) if profile in ("random", "corners")
                else int(rng.integers(-50, 50)),
                hard_reset=int(rng.integers(0, 2)), v_reset=int(rng.integers(-100, 100)), strict=int(rng.integers(0, 2)),
                ilif=int(rng.random() < 0.75), fire_phase=int(rng.integers(0, 2)))


def _interesting(hw, thr):
    """Membrane values where doubling meets a boundary (threshold, saturation, sign)."""
    vmax, vmin = hw.membrane_max, hw.membrane_min
    vals = [0, 1, -1, vmax, vmin, vmax - 1, vmin + 1, vmax // 2, vmax // 2 + 1, vmin // 2, vmin // 2 - 1,
            thr // 2, (thr + 1) // 2, thr // 2 - 1, thr, thr - 1, -thr // 2]
    return [int(np.clip(v, vmin, vmax)) for v in vals]


def _directed(hw):
    """(config overrides, LOAD value, ACC (w, k) list, fire_phase) cases for the corners profile."""
    vmax, vmin = hw.membrane_max, hw.membrane_min
    wmax, wmin, kmax = hw.weight_max, hw.weight_min, hw.numeric.input_bits - 1
    cases = []
    for thr in (1, 2, 3, hw.threshold_max, min(hw.threshold_max, vmax // 2), 1 << (hw.numeric.threshold_bits - 1)):
        for strict in (0, 1):
            for v in _interesting(hw, thr):
                cases.append((dict(threshold=thr, strict=strict, bias=0), v, [], 1))
    for bias in (hw.bias_max, hw.bias_min, 0, 1, -1):
        for v in (vmax, vmin, vmax // 2, vmin // 2, 0, -1):
            for accs in ([], [(wmax, kmax)] * 4, [(wmin, kmax)] * 4, [(1, 0)], [(-1, 0)]):
                cases.append((dict(threshold=1, strict=0, bias=bias), v, accs, 0))
    return cases


async def _update(dut, model, addr, cfg, log):
    """Issue an UPDATE at ``addr`` and check it two cycles later; returns the result."""
    set_inputs(dut, cfg)
    dut.addr.value = addr
    dut.cmd.value = CMD_UPDATE
    expect = model.update(addr, cfg)
    await FallingEdge(dut.clk)
    assert int(dut.ready.value) == 0, f"{log}: ready during the UPDATE's second cycle"
    dut.cmd.value = CMD_NOP
    await FallingEdge(dut.clk)
    assert int(dut.valid.value) == 1, f"{log}: valid"
    got = update_result(dut)
    assert got == expect, f"{log}: got {got}, expected {expect} (config {cfg})"
    return got


async def _corners(dut, hw, model):
    n = 0
    for over, v, accs, fire_phase in _directed(hw):
        cfg = dict(threshold=1, leak_shift=0, bias=0, hard_reset=0, v_reset=0, strict=0, ilif=1, fire_phase=fire_phase)
        cfg.update(over)
        issue_load(dut, model, 0, v)
        await FallingEdge(dut.clk)
        for w, k in accs:
            issue_acc(dut, model, 0, w, k)
            await FallingEdge(dut.clk)
            assert dut.acc_out.value.to_signed() == model.acc[0], f"corner {n}: accumulator"
        await _update(dut, model, 0, cfg, f"corner {n} (load {v}, accs {accs})")
        # a second fire step from the result: the remainder keeps doubling
        if fire_phase:
            await _update(dut, model, 0, cfg, f"corner {n} second fire step")
        n += 1
    return n


@cocotb.test()
async def pe_ilif_random(dut):
    hw, n_cycles, profile, rng = settings("PE", "CYCLES", 10000)
    await clock_and_reset(dut, {"cmd": CMD_NOP, "ilif": 0, "fire_phase": 0})
    n_addr = min(8, pe_depth(hw))
    model = PeModel(hw, n_addr)
    corners = await _corners(dut, hw, model) if profile == "corners" else 0
    pipe = UpdateHandshake()
    cfg = _config(rng, hw, profile)
    updates = acc_checked = 0
    modes = [0, 0, 0]
    acc_expect = None
    for cyc in range(n_cycles):
        await FallingEdge(dut.clk)
        if acc_expect is not None:
            assert dut.acc_out.value.to_signed() == acc_expect, f"cycle {cyc}: accumulator read-back"
            acc_checked += 1
            acc_expect = None
        if pipe.cycle(dut, cyc, cfg):
            continue
        if cyc % 997 == 0:
            cfg = _config(rng, hw, profile)
        cfg["fire_phase"] = int(rng.integers(0, 2))
        set_inputs(dut, cfg)
        r = rng.random()
        addr = int(rng.integers(0, n_addr))
        dut.addr.value = addr
        if r < 0.5:
            issue_acc(dut, model, addr, *draw_acc(rng, hw, profile, model.acc[addr]))
        elif r < 0.88:
            pipe.issue_update(dut, addr, model.update(addr, cfg))
            updates += 1
            modes[0 if not cfg["ilif"] else 1 + cfg["fire_phase"]] += 1
        elif r < 0.97:
            choice = rng.random()
            val = (int(rng.choice(_interesting(hw, cfg["threshold"]))) if choice < 0.6
                   else int(rng.integers(hw.membrane_min, hw.membrane_max + 1)))
            issue_load(dut, model, addr, val)
        else:
            dut.cmd.value = CMD_NOP
            acc_expect = model.acc[addr]  # combinational read of the held address after this edge
    assert pipe.checked > 0
    dut._log.info(f"{corners} directed corners, {n_cycles} random cycles, {updates} updates (IF/LIF {modes[0]}, "
                  f"iLIF accumulate {modes[1]}, iLIF fire {modes[2]}), {pipe.checked} results and {acc_checked} "
                  f"accumulator reads checked, profile {profile}")
