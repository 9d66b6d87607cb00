"""Shared cocotb code: settings from the environment, clock and reset, and what the PE testbenches share
(random ACC operands, the model of ``atsnn_pe`` / ``atsnn_pe_ilif`` with its commands, the UPDATE
result and its two-cycle handshake)."""

import os

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from atsnn.config import load_hardware
from atsnn.hwsim.ilif_reference import ilif_accumulate, ilif_fire
from atsnn.hwsim.reference import neuron_update
from atsnn.rtl.pe import CMD_ACC, CMD_LOAD, CMD_NOP, CMD_UPDATE


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
        for the iLIF PE, ``ilif`` and ``fire_phase`` (absent: 0). IF/LIF: :func:`atsnn.hwsim.reference.neuron_update`,
        accumulator cleared; iLIF accumulate step: :func:`atsnn.hwsim.ilif_reference.ilif_accumulate`, no spike,
        accumulator cleared; iLIF fire step: :func:`atsnn.hwsim.ilif_reference.ilif_fire`, accumulator kept.
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
                                          vmin=hw.membrane_min, vmax=hw.membrane_max,
                                          current_shift=cfg.get("current_shift", 0))
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
    UPDATE's second cycle) are checked; ``checked`` counts the results. With ``collect=True`` a
    wrong result does not fail at once but goes into ``mismatches`` (messages) for the caller.
    """

    def __init__(self, collect: bool = False):
        self.busy = self.valid = False
        self.pending = self.expect = None
        self.checked = 0
        self.mismatches = [] if collect else None

    def cycle(self, dut, cyc: int, cfg) -> bool:
        """Check this cycle (``cfg`` goes into a mismatch's message); True while the UPDATE is busy."""
        assert int(dut.ready.value) == (0 if self.busy else 1), f"cycle {cyc}: ready"
        assert int(dut.valid.value) == (1 if self.valid else 0), f"cycle {cyc}: valid"
        if self.valid:
            got = update_result(dut)
            msg = f"cycle {cyc}: got {got}, expected {self.expect} (config {cfg})"
            if self.mismatches is None:
                assert got == self.expect, msg
            elif got != self.expect:
                self.mismatches.append(msg)
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


# --------------------------------------------------------------------------- directed edge cases
# Written by hand from docs/hardware.md for the atsnn28 widths (16-bit membrane: [-32768, 32767];
# 15-bit threshold: 1..32767; Q1.15 exp table, ONE = 32768; cl_frac_bits Q = 16, so the exit
# boundary ONE * 2**Q is 2**31). The testbenches also check each row against the golden model
# (atsnn.hwsim.reference) and the widths below against the preset (check_edge_widths).

#: widths the hand-written rows below assume
EDGE_WIDTHS = dict(membrane_min=-32768, membrane_max=32767, threshold_max=32767, exp_one=32768,
                   cl_frac_bits=16, weight_min=-128, weight_max=127, input_bits=8,
                   bias_min=-32768, bias_max=32767, exp_table_entries=64)

#: AT exp constants of ``out_scale = 1.0`` (contract sec. 7, E = 64, D = 12, F = 8, 16 scale bits):
#: ``exp_mult = round(63 / 12 * 2**24) = 88080384``, ``d_clip = ceil(63 * 2**24 / exp_mult) = 12``.
#: ``d = 0`` gives ``sigma = T[0] = ONE``; ``d >= 12`` gives ``idx = (12 * exp_mult) >> 16``
#: ``= 16128``, ``j = 63 = E - 1``, so ``sigma = 0`` (past the table).
EDGE_EXP = dict(exp_mult=88080384, d_clip=12)


def check_edge_widths(hw) -> None:
    """The preset ``hw`` has the widths and exp constants the edge rows were written for."""
    from atsnn.hwsim.reference import exp_constants
    got = dict(membrane_min=hw.membrane_min, membrane_max=hw.membrane_max,
               threshold_max=hw.threshold_max, exp_one=hw.exp_one, cl_frac_bits=hw.at.cl_frac_bits,
               weight_min=hw.weight_min, weight_max=hw.weight_max,
               input_bits=hw.numeric.input_bits, bias_min=hw.bias_min, bias_max=hw.bias_max,
               exp_table_entries=hw.at.exp_table_entries)
    assert got == EDGE_WIDTHS, f"the edge rows assume {EDGE_WIDTHS}, the preset has {got}"
    mult, d_clip = exp_constants(hw, 1.0)
    assert dict(exp_mult=mult, d_clip=d_clip) == EDGE_EXP, f"exp constants {mult}, {d_clip}"


def _pe(name, v0, acc, expect, **cfg):
    base = dict(threshold=32767, leak_shift=0, bias=0, hard_reset=0, v_reset=0, strict=0, current_shift=0)
    base.update(cfg)
    return dict(name=name, v0=v0, acc=acc, cfg=base, expect=expect)


#: PE UPDATE edge cases (contract sec. 4): LOAD ``v0``, the ACCs ``(w, k)`` (``acc += w << k``),
#: then one UPDATE with ``cfg``; ``expect`` is ``(v_out, spike, sat_hi, sat_lo)``. Steps 1-4:
#: ``v1 = v - (v >> k)`` (floor shift), ``s = v1 + a + b``, ``sat_hi = s > membrane_max``,
#: ``sat_lo = s < membrane_min``, fire ``v2 >= theta`` (``strict = 0``) or ``v2 > theta``
#: (``strict = 1``), then ``v2 - theta`` (soft) or ``v_reset`` (``hard_reset = 1``).
PE_EDGE_CASES = [
    # upper limit: s = membrane_max is no saturation; membrane_max + 1 is (and clamps)
    # 32000 + 508 + 254 + 5 = 32767
    _pe("s = vmax from acc: no sat_hi", 32000, [(127, 2), (127, 1), (5, 0)], (32767, 0, 0, 0),
        strict=1),
    _pe("s = vmax + 1: sat_hi, clamped", 32767, [(1, 0)], (32767, 0, 1, 0), strict=1),
    _pe("s = vmax from bias: no sat_hi, fires", 0, [], (32667, 1, 0, 0), bias=32767,
        threshold=100),
    _pe("s = vmax + 1 from bias + acc: sat_hi", 0, [(1, 0)], (32667, 1, 1, 0), bias=32767,
        threshold=100),
    # v1 = 32767 - (32767 >> 1) = 16384; 16384 + 16256 + 127 = 32767
    _pe("s = vmax after leak k=1: no sat_hi", 32767, [(127, 7), (127, 0)], (32767, 0, 0, 0),
        leak_shift=1, strict=1),
    _pe("s = vmax + 2: sat_hi", 32766, [(3, 0)], (32767, 0, 1, 0), strict=1),
    # lower limit: s = membrane_min is no saturation; membrane_min - 1 is (and clamps)
    # -32000 - 512 - 256 = -32768
    _pe("s = vmin from acc: no sat_lo", -32000, [(-128, 2), (-128, 1)], (-32768, 0, 0, 0),
        threshold=1),
    _pe("s = vmin - 1: sat_lo, clamped", -32768, [(-1, 0)], (-32768, 0, 0, 1), threshold=1),
    _pe("s = vmin from bias: no sat_lo", 0, [], (-32768, 0, 0, 0), bias=-32768, threshold=1),
    _pe("s = vmin - 1 from bias + acc: sat_lo", 0, [(-1, 0)], (-32768, 0, 0, 1), bias=-32768,
        threshold=1),
    _pe("s = vmin + 1: no sat_lo", -32768, [(1, 0)], (-32767, 0, 0, 0), threshold=1),
    # v1 = -32767 - (-32767 >> 1) = -32767 + 16384 = -16383 (the shift rounds toward -inf);
    # -16383 - 16384 - 1 = -32768, and one more -1 is -32769
    _pe("s = vmin after leak k=1: no sat_lo", -32767, [(-128, 7), (-1, 0)], (-32768, 0, 0, 0),
        leak_shift=1, threshold=1),
    _pe("s = vmin - 1 after leak k=1: sat_lo", -32767, [(-128, 7), (-2, 0)], (-32768, 0, 0, 1),
        leak_shift=1, threshold=1),
    # threshold equality: v2 = theta fires under '>=' only
    _pe("v2 = theta, '>=': fires, soft reset to 0", 0, [(100, 0)], (0, 1, 0, 0), threshold=100),
    _pe("v2 = theta, '>': no spike", 0, [(100, 0)], (100, 0, 0, 0), threshold=100, strict=1),
    _pe("v2 = theta - 1, '>=': no spike", 0, [(99, 0)], (99, 0, 0, 0), threshold=100),
    _pe("v2 = theta + 1, '>': fires, soft reset to 1", 0, [(101, 0)], (1, 1, 0, 0), threshold=100,
        strict=1),
    _pe("v2 = theta = 1, '>='", 1, [], (0, 1, 0, 0), threshold=1),
    _pe("v2 = theta = 1, '>'", 1, [], (1, 0, 0, 0), threshold=1, strict=1),
    # v1 = 400 - (400 >> 2) = 300; 300 + 50 = 350
    _pe("v2 = theta via bias and leak k=2, '>='", 400, [], (0, 1, 0, 0), threshold=350,
        leak_shift=2, bias=50),
    _pe("v2 = theta via bias and leak k=2, '>'", 400, [], (350, 0, 0, 0), threshold=350,
        leak_shift=2, bias=50, strict=1),
    # hard reset to a nonzero v_reset (never v2 - theta, never 0)
    _pe("v2 = theta, '>=', hard reset to -7", 0, [(100, 0)], (-7, 1, 0, 0), threshold=100,
        hard_reset=1, v_reset=-7),
    _pe("v2 = theta, '>', hard reset: no spike", 0, [(100, 0)], (100, 0, 0, 0), threshold=100,
        hard_reset=1, v_reset=-7, strict=1),
    _pe("v2 = theta - 1, '>=', hard reset: no spike", 0, [(99, 0)], (99, 0, 0, 0), threshold=100,
        hard_reset=1, v_reset=-7),
    _pe("v2 = theta + 1, '>', hard reset to 12345", 0, [(101, 0)], (12345, 1, 0, 0),
        threshold=100, hard_reset=1, v_reset=12345, strict=1),
    _pe("v2 = theta, '>=', hard reset to vmax", 0, [(100, 0)], (32767, 1, 0, 0), threshold=100,
        hard_reset=1, v_reset=32767),
    # both edges at once: clamped to vmax = theta_max
    _pe("s = vmax + 1 clamps onto theta = vmax, '>='", 32767, [(1, 0)], (0, 1, 1, 0)),
    _pe("s = vmax + 1 clamps onto theta = vmax, '>'", 32767, [(1, 0)], (32767, 0, 1, 0), strict=1),
    _pe("s = vmax + 1 clamps onto theta, hard reset to vmin", 32767, [(1, 0)], (-32768, 1, 1, 0),
        hard_reset=1, v_reset=-32768),
    # current shift (a + 2**(c-1)) >> c: rounds to nearest, ties up, floor for negatives
    _pe("shift 1: a = 3 -> 2 (tie up)", 0, [(3, 0)], (2, 0, 0, 0), current_shift=1),
    _pe("shift 1: a = -3 -> -1 (tie up)", 0, [(-3, 0)], (-1, 0, 0, 0), current_shift=1),
    _pe("shift 1: a = -1 -> 0", 0, [(-1, 0)], (0, 0, 0, 0), current_shift=1),
    _pe("shift 2: a = 5 -> 1", 0, [(5, 0)], (1, 0, 0, 0), current_shift=2),
    _pe("shift 2: a = 6 -> 2", 0, [(6, 0)], (2, 0, 0, 0), current_shift=2),
    _pe("shift 23: a = 127 << 7 -> 0", 0, [(127, 7)], (0, 0, 0, 0), current_shift=23),
    _pe("shift 4: a = 127 << 7 -> 1016, fires at 1016", 0, [(127, 7)], (0, 1, 0, 0), current_shift=4,
        threshold=1016),
]


def pe_edge_reference(hw, row) -> tuple[int, int, int, int]:
    """What :func:`atsnn.hwsim.reference.neuron_update` gives for the ``PE_EDGE_CASES`` row ``row``;
    also checks that the row's operands fit the PE's ports on ``hw``."""
    cfg = row["cfg"]
    assert hw.membrane_min <= row["v0"] <= hw.membrane_max, row["name"]
    for w, k in row["acc"]:
        assert hw.weight_min <= w <= hw.weight_max and 0 <= k < hw.numeric.input_bits, row["name"]
    assert 1 <= cfg["threshold"] <= hw.threshold_max, row["name"]
    assert hw.bias_min <= cfg["bias"] <= hw.bias_max, row["name"]
    assert 0 <= cfg["leak_shift"] <= hw.max_leak_shift, row["name"]
    assert hw.membrane_min <= cfg["v_reset"] <= hw.membrane_max, row["name"]
    acc = sum(w << k for w, k in row["acc"])
    vn, z, hi, lo = neuron_update(np.array([row["v0"]]), np.array([acc]), cfg["bias"],
                                  threshold=cfg["threshold"], leak_shift=cfg["leak_shift"],
                                  reset="to_value" if cfg["hard_reset"] else "subtract",
                                  v_reset=cfg["v_reset"],
                                  comparator=">" if cfg["strict"] else ">=",
                                  vmin=hw.membrane_min, vmax=hw.membrane_max,
                                  current_shift=cfg["current_shift"])
    return int(vn[0]), int(z[0]), int(hi[0]), int(lo[0])


def _at_step(u, expect):
    return dict(u=u, expect=expect)


#: AT exit-test edge cases (contract sec. 5): per inference the classes, CL_init and tau in Q16
#: integers (exp constants ``EDGE_EXP``), then per timestep the class membranes and the expected
#: ``(S, winner, exit, CL_{t+1})``. Exit is ``2**31 > CL_t * S``, so ``CL_t * S = 2**31`` exactly
#: must not exit and one LSB less of CL_t must. A tied top class has sigma = ONE; a class 1000
#: below the top is past the table (sigma = 0). ``CL_{t+1} = (CL_t * tau) >> 16``.
AT_EDGE_CASES = [
    dict(name="2 tied classes, CL = 0.5: CL*S = 2**31, no exit", classes=2, cl=32768, tau=65536,
         steps=[_at_step([5, 5], (65536, 0, 0, 32768))]),
    dict(name="2 tied classes, CL = 0.5 - 1 LSB: exit", classes=2, cl=32767, tau=65536,
         steps=[_at_step([5, 5], (65536, 0, 1, 32767))]),
    dict(name="2 tied classes, CL = 0.5 + 1 LSB: no exit", classes=2, cl=32769, tau=65536,
         steps=[_at_step([-3, -3], (65536, 0, 0, 32769))]),
    dict(name="one class past the table, CL = 1.0: S = ONE, CL*S = 2**31, no exit", classes=2,
         cl=65536, tau=65536, steps=[_at_step([1000, 0], (32768, 0, 0, 65536))]),
    dict(name="one class past the table, CL = 1.0 - 1 LSB: exit", classes=2, cl=65535, tau=65536,
         steps=[_at_step([0, 1000], (32768, 1, 1, 65535))]),
    # CL_1 = 65536: 2**32; CL_2 = 32768: 2**31 (no exit); CL_3 = 16384: 2**30 (exit)
    dict(name="CL reaches the boundary at t = 2 (tau = 0.5), exits at t = 3", classes=2, cl=65536,
         tau=32768, steps=[_at_step([3, 3], (65536, 0, 0, 32768)),
                           _at_step([4, 4], (65536, 0, 0, 16384)),
                           _at_step([9, 9], (65536, 0, 1, 8192))]),
    dict(name="4 tied classes, CL = 0.25: boundary, no exit", classes=4, cl=16384, tau=65536,
         steps=[_at_step([2, 2, 2, 2], (131072, 0, 0, 16384))]),
    dict(name="4 tied classes, CL = 0.25 - 1 LSB: exit", classes=4, cl=16383, tau=65536,
         steps=[_at_step([2, 2, 2, 2], (131072, 0, 1, 16383))]),
    dict(name="4 tied classes, CL = 0.25 + 1 LSB: no exit", classes=4, cl=16385, tau=65536,
         steps=[_at_step([2, 2, 2, 2], (131072, 0, 0, 16385))]),
    dict(name="class 0 past the table, 1 and 2 tied: winner 1, boundary", classes=3, cl=32768,
         tau=65536, steps=[_at_step([-1000, 7, 7], (65536, 1, 0, 32768))]),
    # S = 3 * 32768 = 98304 does not divide 2**31: 21845 * S = 2**31 - 32768 (exit),
    # 21846 * S = 2**31 + 65536 (no exit)
    dict(name="3 tied classes, CL = 21845: CL*S just below 2**31, exit", classes=3, cl=21845,
         tau=65536, steps=[_at_step([11, 11, 11], (98304, 0, 1, 21845))]),
    dict(name="3 tied classes, CL = 21846: CL*S just above 2**31, no exit", classes=3, cl=21846,
         tau=65536, steps=[_at_step([11, 11, 11], (98304, 0, 0, 21846))]),
]


def at_edge_reference(hw, row) -> list[tuple[int, int, int, int]]:
    """What :mod:`atsnn.hwsim.reference` (``at_sigma``, ``cl_sequence``, ``at_exit``) gives for each step
    of the ``AT_EDGE_CASES`` row ``row``; also checks that its operands fit the AT unit on
    ``hw``."""
    from atsnn.hwsim.reference import at_exit, at_sigma, cl_sequence, exp_table
    from atsnn.rtl.at_unit import at_max_classes
    q = hw.at.cl_frac_bits
    assert 2 <= row["classes"] <= at_max_classes(hw), row["name"]
    assert 0 < row["cl"] <= 1 << q and 0 < row["tau"] <= 1 << q, row["name"]
    steps = row["steps"]
    cls = cl_sequence(row["cl"] / (1 << q), row["tau"] / (1 << q), len(steps) + 1, hw)
    assert int(cls[0]) == row["cl"], row["name"]
    out = []
    for t, step in enumerate(steps):
        u = np.array(step["u"], dtype=np.int64)
        assert len(u) == row["classes"], row["name"]
        assert (hw.at_membrane_min <= u).all() and (u <= hw.at_membrane_max).all(), row["name"]
        sig, win = at_sigma(u[None, :], exp_table(hw), hw=hw, **EDGE_EXP)
        s = int(sig.sum())
        out.append((s, int(win[0]), int(bool(at_exit(s, int(cls[t]), hw))), int(cls[t + 1])))
    return out
