"""Shared cocotb code: settings from the environment, clock and reset, and what the PE testbenches share
(random ACC operands, the model of ``atsnn_pe`` / ``atsnn_pe_ilif`` with its commands, the UPDATE
result and its two-cycle handshake)."""

import os

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from atsnn.config import load_hardware
from hwsim.ilif_reference import ilif_accumulate, ilif_fire
from hwsim.reference import neuron_update
from rtl.pe import CMD_ACC, CMD_LOAD, CMD_NOP, CMD_UPDATE


def settings(prefix: str, count_key: str, count_default: int):
    """(hardware, count, profile, rng) from HW_PRESET and <prefix>_<count_key>/_PROFILE/_SEED."""
    hw = load_hardware(os.environ.get("HW_PRESET", "atsnn28"))
    count = int(os.environ.get(f"{prefix}_{count_key}", str(count_default)))
    profile = os.environ.get(f"{prefix}_PROFILE", "random")
    rng = np.random.default_rng(int(os.environ.get(f"{prefix}_SEED", "1")))
    return hw, count, profile, rng


async def clock_and_reset(dut, idle: dict) -> None:
    """Start a 10 ns clock, hold reset over one rising edge with ``idle`` inputs, release at a falling edge."""
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    dut.rst.value = 1
    for name, value in idle.items():
        getattr(dut, name).value = value
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


# --------------------------------------------------------------------------- PE testbenches
def draw_weight(rng, hw, profile: str) -> int:
    """A random weight: near ``weight_max`` for the ``pos_sat`` profile, near ``weight_min`` for ``neg_sat``,
    else uniform over the weight range (one ``rng.integers`` draw)."""
    if profile == "pos_sat":
        return int(rng.integers(hw.weight_max - 20, hw.weight_max + 1))
    if profile == "neg_sat":
        return int(rng.integers(hw.weight_min, hw.weight_min + 20))
    return int(rng.integers(hw.weight_min, hw.weight_max + 1))


def draw_acc(rng, hw, profile: str, acc: int) -> tuple[int, int]:
    """Operands ``(w, k)`` of a random ACC onto the accumulator value ``acc``: :func:`draw_weight`, then a
    bit plane ``k`` below ``input_bits``. Keeps the contract's no-overflow guarantee: if ``|acc + (w << k)|``
    would exceed ``accumulator_max // 2``, the ACC becomes ``k = 0`` with ``w`` of the sign opposite to ``acc``."""
    w = draw_weight(rng, hw, profile)
    k = int(rng.integers(0, hw.numeric.input_bits))
    if abs(acc + (w << k)) > hw.accumulator_max // 2:
        k, w = 0, -int(np.sign(acc)) * abs(w)
    return w, k


class PeModel:
    """Golden state of the first ``n_addr`` entries of ``atsnn_pe`` / ``atsnn_pe_ilif``: ``v`` and ``acc``
    (lists of ints), changed by each command exactly as the PE must change them."""

    def __init__(self, hw, n_addr: int):
        self.hw = hw
        self.v = [0] * n_addr
        self.acc = [0] * n_addr

    def update(self, addr: int, cfg: dict) -> tuple[int, int, int, int]:
        """An UPDATE of ``addr`` with the PE's configuration inputs ``cfg``; returns the expected
        ``(v_out, spike, sat_hi, sat_lo)`` and commits the membrane.

        ``cfg`` holds ``bias``, ``threshold``, ``leak_shift``, ``hard_reset``, ``v_reset``, ``strict`` and,
        for the iLIF PE, ``ilif`` and ``fire_phase`` (absent: 0). IF/LIF: :func:`hwsim.reference.neuron_update`,
        accumulator cleared; iLIF accumulate step: :func:`hwsim.ilif_reference.ilif_accumulate`, no spike,
        accumulator cleared; iLIF fire step: :func:`hwsim.ilif_reference.ilif_fire`, accumulator kept.
        """
        hw = self.hw
        v, a = np.array([self.v[addr]]), np.array([self.acc[addr]])
        comparator = ">" if cfg["strict"] else ">="
        if cfg.get("ilif") and cfg.get("fire_phase"):
            vn, z, hi, lo = ilif_fire(v, threshold=cfg["threshold"], comparator=comparator,
                                      vmin=hw.membrane_min, vmax=hw.membrane_max)
        elif cfg.get("ilif"):
            vn, hi, lo = ilif_accumulate(v, a, cfg["bias"], vmin=hw.membrane_min, vmax=hw.membrane_max)
            z = np.zeros(1, dtype=np.uint8)
            self.acc[addr] = 0
        else:
            vn, z, hi, lo = neuron_update(v, a, cfg["bias"], threshold=cfg["threshold"], leak_shift=cfg["leak_shift"],
                                          reset="to_value" if cfg["hard_reset"] else "subtract",
                                          v_reset=cfg["v_reset"], comparator=comparator,
                                          vmin=hw.membrane_min, vmax=hw.membrane_max)
            self.acc[addr] = 0
        self.v[addr] = int(vn[0])
        return int(vn[0]), int(z[0]), int(hi[0]), int(lo[0])


def set_inputs(dut, values: dict) -> None:
    """Drive the DUT inputs named by the keys of ``values``."""
    for name, value in values.items():
        getattr(dut, name).value = value


def issue_acc(dut, model: PeModel, addr: int, w: int, k: int) -> None:
    """Drive an ACC of ``w << k`` onto entry ``addr`` (``cmd``, ``addr``, ``w``, ``k``) and add it to the model."""
    dut.cmd.value, dut.addr.value, dut.w.value, dut.k.value = CMD_ACC, addr, w, k
    model.acc[addr] += w << k


def issue_load(dut, model: PeModel, addr: int, value: int) -> None:
    """Drive a LOAD of the membrane ``value`` into entry ``addr`` (accumulator cleared) and mirror it in the model."""
    dut.cmd.value, dut.addr.value, dut.w_data.value = CMD_LOAD, addr, value
    model.v[addr], model.acc[addr] = value, 0


def update_result(dut) -> tuple[int, int, int, int]:
    """The PE's UPDATE outputs now: ``(v_out, spike, sat_hi, sat_lo)`` (``v_out`` signed)."""
    return dut.v_out.value.to_signed(), int(dut.spike.value), int(dut.sat_hi.value), int(dut.sat_lo.value)


class UpdateHandshake:
    """The two-cycle UPDATE of ``atsnn_pe`` / ``atsnn_pe_ilif`` in a stream of one command per cycle.

    Each cycle, after its falling edge, call :meth:`cycle` first; when it returns True the PE is in an
    UPDATE's second cycle (``cmd`` is set to NOP) and no command may be issued. Issue an UPDATE with
    :meth:`issue_update`. Every cycle's ``ready`` / ``valid`` and every result (the cycle after the
    UPDATE's second cycle) are checked; ``checked`` counts the results.
    """

    def __init__(self):
        self.busy = self.valid = False
        self.pending = self.expect = None
        self.checked = 0

    def cycle(self, dut, cyc: int, cfg) -> bool:
        """Check this cycle (``cfg`` goes into a mismatch's message); True while the UPDATE is busy."""
        assert int(dut.ready.value) == (0 if self.busy else 1), f"cycle {cyc}: ready"
        assert int(dut.valid.value) == (1 if self.valid else 0), f"cycle {cyc}: valid"
        if self.valid:
            got = update_result(dut)
            assert got == self.expect, f"cycle {cyc}: got {got}, expected {self.expect} (config {cfg})"
            self.checked += 1
        self.valid = False
        if self.busy:  # the second update cycle finishes now
            self.busy, self.valid, self.expect = False, True, self.pending
            dut.cmd.value = CMD_NOP
            return True
        return False

    def issue_update(self, dut, addr: int, expect) -> None:
        """Drive an UPDATE of ``addr`` (the configuration inputs already set) whose result must be ``expect``."""
        dut.cmd.value, dut.addr.value = CMD_UPDATE, addr
        self.pending, self.busy = expect, True
