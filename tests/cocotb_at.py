"""cocotb testbench of the exported AT unit against atsnn.hwsim.reference (contract sec. 5-6).

Environment: AT_STEPS (evaluations), AT_PROFILE (random | ties | far | first | never |
edges), AT_SEED, HW_PRESET. ``edges`` runs the hand-written rows of
``cocotb_common.AT_EDGE_CASES`` (AT_STEPS and AT_SEED unused).
"""

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from cocotb_common import (AT_EDGE_CASES, EDGE_EXP, at_edge_reference, check_edge_widths,
                           clock_and_reset, settings)
from atsnn.hwsim.reference import at_exit, at_sigma, cl_sequence, exp_constants, exp_table


async def _evaluate(dut, u, *, first: bool, what: str) -> int:
    """Write the class membranes ``u`` (one per cycle), pulse ``start`` (with ``first``) and wait
    for ``done``; the busy cycles it took (the results are then on ``sigma_sum``, ``winner``,
    ``exit``, ``cl``)."""
    C = len(u)
    for c in range(C):
        dut.u_we.value = 1
        dut.u_first.value = int(c == 0)
        dut.u_addr.value = c
        dut.u_data.value = int(u[c])
        await FallingEdge(dut.clk)
    dut.u_we.value = 0
    dut.start.value = 1
    dut.first.value = int(first)
    await FallingEdge(dut.clk)
    dut.start.value = 0
    busy = int(dut.busy.value)  # the first busy cycle follows the edge that took start
    while True:
        await FallingEdge(dut.clk)
        if int(dut.done.value):
            return busy
        busy += int(dut.busy.value)
        assert busy <= 3 * C + 4, f"{what}: unit still busy after {busy} cycles"


async def _edge_rows(dut, hw):
    """Each row of ``AT_EDGE_CASES``: its expectations checked against atsnn.hwsim.reference first, then
    run as one inference (``first`` at its first step); every step's ``(S, winner, exit,
    CL_{t+1})`` and busy cycles must be the row's hand-written values. Every wrong step is listed
    at the end."""
    check_edge_widths(hw)
    wrong = []
    for row in AT_EDGE_CASES:
        expect = [step["expect"] for step in row["steps"]]
        ref = at_edge_reference(hw, row)
        assert ref == expect, f"{row['name']}: atsnn.hwsim.reference {ref}, table {expect}"
        dut.classes.value = row["classes"]
        dut.exp_mult.value = EDGE_EXP["exp_mult"]
        dut.d_clip.value = EDGE_EXP["d_clip"]
        dut.cl_init.value = row["cl"]
        dut.tau.value = row["tau"]
        for t, step in enumerate(row["steps"]):
            what = f"{row['name']}, t={t + 1}"
            busy = await _evaluate(dut, step["u"], first=t == 0, what=what)
            got = (int(dut.sigma_sum.value), int(dut.winner.value), int(dut.exit.value),
                   int(dut.cl.value))
            if got != step["expect"]:
                wrong.append(f"{what}: (S, winner, exit, CL) {got}, not {step['expect']}")
            C = row["classes"]
            assert busy == hw.cycles.at_exp * C + hw.cycles.at_decision, f"{what}: {busy} cycles"
    assert not wrong, f"{len(wrong)} edge steps wrong:\n" + "\n".join(wrong)
    dut._log.info(f"{len(AT_EDGE_CASES)} edge rows checked")


@cocotb.test()
async def at_random(dut):
    hw, steps, profile, rng = settings("AT", "STEPS", 200)
    table = exp_table(hw)
    await clock_and_reset(dut, {"start": 0, "u_we": 0})
    if profile == "edges":
        await _edge_rows(dut, hw)
        return
    total_cycles = 0
    t = 0
    T = int(rng.integers(1, 9))
    for step in range(steps):
        if t == 0:  # a new inference: new classes, scale and confidence parameters
            C = int(rng.integers(2, 13))
            scale = float(np.exp(rng.uniform(np.log(1e-3), np.log(0.5))))
            mult, d_clip = exp_constants(hw, scale)
            if profile == "first":
                cl_init, tau = 1e-4, 0.5
            elif profile == "never":
                cl_init, tau = 1.0, 1.0
            else:
                cl_init, tau = float(rng.uniform(0.3, 1.0)), float(rng.uniform(0.9, 1.0))
            cls = cl_sequence(cl_init, tau, T, hw)
            q = hw.at.cl_frac_bits
            dut.classes.value = C
            dut.exp_mult.value = mult
            dut.d_clip.value = d_clip
            dut.cl_init.value = int(round(cl_init * (1 << q)))
            dut.tau.value = int(round(tau * (1 << q)))
        if profile == "ties":
            u = np.full(C, int(rng.integers(-1000, 1000)))
            u[rng.integers(0, C, 2)] += int(rng.integers(0, 3))
        elif profile == "far":
            u = rng.integers(hw.at_membrane_min, hw.at_membrane_max, C)
        else:
            u = rng.integers(-int(4 / scale), int(4 / scale) + 1, C)
        busy = await _evaluate(dut, u, first=t == 0, what=f"step {step}")
        sig, win = at_sigma(u[None, :], table, exp_mult=mult, d_clip=d_clip, hw=hw)
        s = int(sig.sum())
        ex = bool(at_exit(s, cls[t], hw))
        got = (int(dut.sigma_sum.value), int(dut.winner.value), int(dut.exit.value), busy)
        exp = (s, int(win[0]), int(ex), hw.cycles.at_exp * C + hw.cycles.at_decision)
        assert got == exp, f"step {step} t={t + 1}: got (S, winner, exit, cycles) {got}, expected {exp}; u={u.tolist()}"
        if profile == "first":
            assert ex
        if profile == "never":
            assert not ex
        total_cycles += busy
        t = (t + 1) % T
    dut._log.info(f"{steps} evaluations, {total_cycles} busy cycles, profile {profile}")
