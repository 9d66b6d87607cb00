"""cocotb testbench of the exported iLIF PE (``atsnn_pe_ilif``) against hwsim's numpy references.

Every UPDATE's membrane, spike and saturation flags are checked against
:func:`hwsim.ilif_reference.ilif_accumulate` / ``ilif_fire`` (iLIF mode) or
:func:`hwsim.reference.neuron_update` (IF/LIF mode), and every cycle's ``ready``/``valid`` timing
and every ACC's accumulator read-back (``acc_out``) against the model.

Environment: PE_CYCLES, PE_PROFILE (random | pos_sat | neg_sat | threshold_eq | corners), PE_SEED,
HW_PRESET (preset name or TOML path). ``corners`` runs a directed list first (doubling exactly to
the threshold, to membrane_max + 1 and membrane_min, extreme thresholds, accumulator and bias
extremes, both comparators), then random cycles.
"""

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from cocotb_common import clock_and_reset, settings
from hwsim.ilif_reference import ilif_accumulate, ilif_fire
from hwsim.reference import neuron_update
from rtl.pe import CMD_ACC, CMD_LOAD, CMD_NOP, CMD_UPDATE, pe_depth


class Model:
    """Membrane and accumulator of the PE's first entries, and the expected UPDATE result."""

    def __init__(self, hw, n_addr):
        self.hw = hw
        self.v = [0] * n_addr
        self.acc = [0] * n_addr

    def update(self, addr, cfg):
        hw = self.hw
        v, a = np.array([self.v[addr]]), np.array([self.acc[addr]])
        if cfg["ilif"] and cfg["fire_phase"]:
            vn, z, hi, lo = ilif_fire(v, threshold=cfg["threshold"], comparator=">" if cfg["strict"] else ">=",
                                      vmin=hw.membrane_min, vmax=hw.membrane_max)
        elif cfg["ilif"]:
            vn, hi, lo = ilif_accumulate(v, a, cfg["bias"], vmin=hw.membrane_min, vmax=hw.membrane_max)
            z = np.zeros(1, dtype=np.uint8)
            self.acc[addr] = 0
        else:
            vn, z, hi, lo = neuron_update(v, a, cfg["bias"], threshold=cfg["threshold"], leak_shift=cfg["leak_shift"],
                                          reset="to_value" if cfg["hard_reset"] else "subtract",
                                          v_reset=cfg["v_reset"], comparator=">" if cfg["strict"] else ">=",
                                          vmin=hw.membrane_min, vmax=hw.membrane_max)
            self.acc[addr] = 0
        self.v[addr] = int(vn[0])
        return int(vn[0]), int(z[0]), int(hi[0]), int(lo[0])


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
    for k_, val in cfg.items():
        getattr(dut, k_).value = val
    dut.addr.value = addr
    dut.cmd.value = CMD_UPDATE
    expect = model.update(addr, cfg)
    await FallingEdge(dut.clk)
    assert int(dut.ready.value) == 0, f"{log}: ready during the UPDATE's second cycle"
    dut.cmd.value = CMD_NOP
    await FallingEdge(dut.clk)
    assert int(dut.valid.value) == 1, f"{log}: valid"
    got = (dut.v_out.value.to_signed(), int(dut.spike.value), int(dut.sat_hi.value), int(dut.sat_lo.value))
    assert got == expect, f"{log}: got {got}, expected {expect} (config {cfg})"
    return got


async def _corners(dut, hw, model):
    n = 0
    for over, v, accs, fire_phase in _directed(hw):
        cfg = dict(threshold=1, leak_shift=0, bias=0, hard_reset=0, v_reset=0, strict=0, ilif=1, fire_phase=fire_phase)
        cfg.update(over)
        dut.addr.value = 0
        dut.cmd.value = CMD_LOAD
        dut.w_data.value = v
        model.v[0], model.acc[0] = v, 0
        await FallingEdge(dut.clk)
        for w, k in accs:
            dut.cmd.value = CMD_ACC
            dut.w.value = w
            dut.k.value = k
            model.acc[0] += w << k
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
    model = Model(hw, n_addr)
    corners = await _corners(dut, hw, model) if profile == "corners" else 0
    cfg = _config(rng, hw, profile)
    busy = valid = False
    pending = expect = None
    updates = checked = acc_checked = 0
    modes = [0, 0, 0]
    acc_expect = None
    for cyc in range(n_cycles):
        await FallingEdge(dut.clk)
        assert int(dut.ready.value) == (0 if busy else 1), f"cycle {cyc}: ready"
        assert int(dut.valid.value) == (1 if valid else 0), f"cycle {cyc}: valid"
        if valid:
            got = (dut.v_out.value.to_signed(), int(dut.spike.value), int(dut.sat_hi.value), int(dut.sat_lo.value))
            assert got == expect, f"cycle {cyc}: got {got}, expected {expect} (config {cfg})"
            checked += 1
        if acc_expect is not None:
            assert dut.acc_out.value.to_signed() == acc_expect, f"cycle {cyc}: accumulator read-back"
            acc_checked += 1
            acc_expect = None
        valid = False
        if busy:  # second update cycle finishes now
            busy, valid, expect = False, True, pending
            dut.cmd.value = CMD_NOP
            continue
        if cyc % 997 == 0:
            cfg = _config(rng, hw, profile)
        cfg["fire_phase"] = int(rng.integers(0, 2))
        for k_, val in cfg.items():
            getattr(dut, k_).value = val
        r = rng.random()
        addr = int(rng.integers(0, n_addr))
        dut.addr.value = addr
        if r < 0.5:
            if profile == "pos_sat":
                w = int(rng.integers(hw.weight_max - 20, hw.weight_max + 1))
            elif profile == "neg_sat":
                w = int(rng.integers(hw.weight_min, hw.weight_min + 20))
            else:
                w = int(rng.integers(hw.weight_min, hw.weight_max + 1))
            k = int(rng.integers(0, hw.numeric.input_bits))
            if abs(model.acc[addr] + (w << k)) > hw.accumulator_max // 2:  # the contract's no-overflow guarantee
                k = 0
                w = -int(np.sign(model.acc[addr])) * abs(w)
            dut.cmd.value = CMD_ACC
            dut.w.value = int(w)
            dut.k.value = k
            model.acc[addr] += int(w) << k
        elif r < 0.88:
            dut.cmd.value = CMD_UPDATE
            pending = model.update(addr, cfg)
            busy = True
            updates += 1
            modes[0 if not cfg["ilif"] else 1 + cfg["fire_phase"]] += 1
        elif r < 0.97:
            choice = rng.random()
            val = (int(rng.choice(_interesting(hw, cfg["threshold"]))) if choice < 0.6
                   else int(rng.integers(hw.membrane_min, hw.membrane_max + 1)))
            dut.cmd.value = CMD_LOAD
            dut.w_data.value = val
            model.v[addr], model.acc[addr] = val, 0
        else:
            dut.cmd.value = CMD_NOP
            acc_expect = model.acc[addr]  # combinational read of the held address after this edge
    assert checked > 0
    dut._log.info(f"{corners} directed corners, {n_cycles} random cycles, {updates} updates (IF/LIF {modes[0]}, "
                  f"iLIF accumulate {modes[1]}, iLIF fire {modes[2]}), {checked} results and {acc_checked} "
                  f"accumulator reads checked, profile {profile}")
