"""cocotb testbench of the exported PE against hwsim's numpy reference (contract sec. 3-4, 6).

Environment: PE_CYCLES, PE_PROFILE (random | pos_sat | neg_sat | threshold_eq | edges), PE_SEED,
HW_PRESET. ``edges`` drives the hand-written rows of ``cocotb_common.PE_EDGE_CASES`` instead of
random commands (PE_CYCLES and PE_SEED unused).
"""

import cocotb
from cocotb.triggers import FallingEdge

from cocotb_common import (PE_EDGE_CASES, PeModel, UpdateHandshake, check_edge_widths,
                           clock_and_reset, draw_acc, issue_acc, issue_load, pe_edge_reference,
                           set_inputs, settings)
from atsnn.rtl.pe import CMD_NOP, pe_depth


def _config(rng, hw, profile):
    thr = int(rng.integers(1, hw.threshold_max + 1)) if profile != "threshold_eq" else int(rng.integers(1, 64))
    return dict(threshold=thr, leak_shift=int(rng.integers(0, hw.max_leak_shift + 1)),
                bias=int(rng.integers(hw.bias_min, hw.bias_max + 1)) if profile == "random" else int(
                    rng.integers(-50, 50)),
                hard_reset=int(rng.integers(0, 2)), v_reset=int(rng.integers(-100, 100)), strict=int(rng.integers(0, 2)),
                current_shift=int(rng.integers(1, hw.numeric.accumulator_bits)) if rng.random() < 0.5 else 0)


async def _edge_rows(dut, hw):
    """Each row of ``PE_EDGE_CASES``: its expectation checked against atsnn.hwsim.reference first, then
    LOAD ``v0``, its ACCs and one UPDATE, one command per free cycle, on entry ``row % 8``; the
    UPDATE's result must be the row's hand-written ``(v_out, spike, sat_hi, sat_lo)``. Every wrong
    row is listed at the end."""
    check_edge_widths(hw)
    n_addr = min(8, pe_depth(hw))
    model = PeModel(hw, n_addr)
    pipe = UpdateHandshake(collect=True)
    cyc = 0
    what = None  # the row whose UPDATE result comes next, for the mismatch messages

    async def free_cycle():  # the next cycle in which a command may be issued
        nonlocal cyc
        while True:
            await FallingEdge(dut.clk)
            cyc += 1
            if not pipe.cycle(dut, cyc, what):
                return

    for i, row in enumerate(PE_EDGE_CASES):
        ref = pe_edge_reference(hw, row)
        assert ref == row["expect"], f"{row['name']}: atsnn.hwsim.reference {ref}, table {row['expect']}"
        addr = i % n_addr
        await free_cycle()
        what = row["name"]
        set_inputs(dut, row["cfg"])  # held until the UPDATE's second cycle is over
        issue_load(dut, model, addr, row["v0"])
        for w, k in row["acc"]:
            await free_cycle()
            issue_acc(dut, model, addr, w, k)
        await free_cycle()
        assert dut.acc_out.value.to_signed() == model.acc[addr], f"{what}: accumulator"
        pipe.issue_update(dut, addr, row["expect"])
    await free_cycle()  # the last UPDATE's result is checked here
    await free_cycle()  # and valid is low again
    assert pipe.checked == len(PE_EDGE_CASES)
    wrong = pipe.mismatches
    assert not wrong, f"{len(wrong)} of {len(PE_EDGE_CASES)} edge rows wrong:\n" + "\n".join(wrong)
    dut._log.info(f"{len(PE_EDGE_CASES)} edge rows checked, {cyc} cycles")


@cocotb.test()
async def pe_random(dut):
    hw, n_cycles, profile, rng = settings("PE", "CYCLES", 10000)
    await clock_and_reset(dut, {"cmd": CMD_NOP})
    if profile == "edges":
        await _edge_rows(dut, hw)
        return
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
