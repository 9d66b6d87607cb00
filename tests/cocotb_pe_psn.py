"""cocotb testbench of the exported sliding-PSN PE (``atsnn_pe_psn``) against hwsim's numpy reference.

Every UPDATE's spike, saturation flags, FIR sum ``h_out`` and clamped input ``x_out`` are checked
against :func:`atsnn.hwsim.psn_reference.psn_update`; every cycle's ``ready``/``valid`` (an UPDATE keeps
``ready`` low for exactly ``cycles.update + k * cycles.psn_tap - 1`` cycles after its issue cycle
and raises ``valid`` in the next), and the accumulator read-back after every ACC, LOAD and NOP.
The history state is checked through ``H`` on every UPDATE and directly by readouts: with the
taps ``q_0 = 1``, all others 0, ``H`` is the oldest history entry, so ``k - 1`` such UPDATEs read a
neuron's whole history, oldest first, and each value is compared with the model's history.

Environment: PE_CYCLES, PE_PROFILE (random | pos_sat | neg_sat | corners), PE_SEED, HW_PRESET
(preset name or TOML path). ``corners`` runs a directed list first (saturation at both ends,
extreme and negative taps, H at its extremes, k = 1 and k = psn_max_taps, every shift with the
threshold at equality under both comparators, the history before t = k after a LOAD over stale
memory), then random cycles. Every profile sets the threshold of about a third of the UPDATEs to
``(H >> shift) + d``, ``d`` in {-1, 0, 1}, so both comparators are exercised at equality.
"""

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from cocotb_common import clock_and_reset, draw_acc, settings
from atsnn.hwsim.psn_reference import psn_update
from atsnn.rtl.pe import CMD_ACC, CMD_LOAD, CMD_NOP, CMD_UPDATE
from atsnn.rtl.pe_psn import psn_history_depth, psn_shift_bits, psn_update_cycles


def tap_range(hw):
    b = hw.numeric.psn_tap_bits
    return -(1 << (b - 1)), (1 << (b - 1)) - 1


class Model:
    """Accumulators and histories of the first ``n_addr`` neurons of one PSN layer."""

    def __init__(self, hw, n_addr):
        self.hw, self.n_addr = hw, n_addr
        self.acc = [0] * n_addr
        self.k = 1
        self.hist = [np.zeros(0, dtype=np.int64) for _ in range(n_addr)]

    def new_layer(self, k):
        self.k = k
        self.hist = [np.zeros(k - 1, dtype=np.int64) for _ in range(self.n_addr)]

    def load(self, addr):
        self.acc[addr] = 0
        self.hist[addr] = np.zeros(self.k - 1, dtype=np.int64)

    def h_of(self, addr, bias, taps):
        """H of an UPDATE of ``addr`` now (no state change), for tuning the threshold."""
        return int(self._ref(addr, bias, taps, 0, 1, ">=")[4][0])

    def _ref(self, addr, bias, taps, shift, threshold, comparator):
        hw = self.hw
        return psn_update(self.hist[addr][None, :], np.array([self.acc[addr]]), np.array([bias]),
                          taps=taps[:self.k], shift=shift, threshold=threshold, comparator=comparator,
                          vmin=hw.membrane_min, vmax=hw.membrane_max)

    def update(self, addr, cfg, taps):
        """Expected ``(spike, sat_hi, sat_lo, H, x)``; commits the new history and clears the accumulator."""
        hw = self.hw
        hist, z, hi, lo, h = self._ref(addr, cfg["bias"], taps, cfg["shift"], cfg["threshold"],
                                       ">" if cfg["strict"] else ">=")
        x = int(np.clip(self.acc[addr] + cfg["bias"], hw.membrane_min, hw.membrane_max))
        self.hist[addr] = hist[0]
        self.acc[addr] = 0
        return int(z[0]), int(hi[0]), int(lo[0]), int(h[0]), x


class Driver:
    """Drives one command per call and checks every cycle's handshake and every result."""

    def __init__(self, dut, hw, model, rng):
        self.dut, self.hw, self.model, self.rng = dut, hw, model, rng
        self.taps = [0] * hw.numeric.psn_max_taps
        self.cycles = self.updates = self.hist_checked = self.acc_checked = self.fired = 0
        self.sat = [0, 0]
        self.eq_hits = 0

    async def _step(self, log):
        await FallingEdge(self.dut.clk)
        self.cycles += 1
        assert int(self.dut.ready.value) == 1, f"{log}: ready"
        assert int(self.dut.valid.value) == 0, f"{log}: valid"

    def _acc_check(self, addr, log):
        assert self.dut.acc_out.value.to_signed() == self.model.acc[addr], f"{log}: accumulator read-back"
        self.acc_checked += 1

    async def acc(self, addr, w, k):
        d = self.dut
        d.cmd.value, d.addr.value, d.w.value, d.k.value = CMD_ACC, addr, w, k
        self.model.acc[addr] += w << k
        await self._step(f"ACC {addr}")
        self._acc_check(addr, f"ACC {addr} {w}<<{k}")

    async def load(self, addr):
        d = self.dut
        d.cmd.value, d.addr.value = CMD_LOAD, addr
        self.model.load(addr)
        await self._step(f"LOAD {addr}")
        self._acc_check(addr, f"LOAD {addr}")

    async def nop(self, addr):
        self.dut.cmd.value, self.dut.addr.value = CMD_NOP, addr
        await self._step("NOP")
        self._acc_check(addr, f"NOP {addr}")

    async def set_taps(self, taps, k, garbage=True):
        """Write the tap file (entries beyond k random when ``garbage``) and set ``n_taps``, one cycle per tap."""
        d = self.dut
        lo, hi = tap_range(self.hw)
        full = list(taps[:k]) + [int(self.rng.integers(lo, hi + 1)) if garbage else 0
                                 for _ in range(self.hw.numeric.psn_max_taps - k)]
        d.cmd.value = CMD_NOP
        for i, q in enumerate(full):
            d.tap_we.value, d.tap_addr.value, d.tap_data.value = 1, i, q
            await self._step(f"tap write {i}")
        d.tap_we.value = 0
        d.n_taps.value = k
        self.taps = full

    async def update(self, addr, cfg, tune=None, expect_h=None):
        """One UPDATE; ``tune = d`` sets the threshold to ``(H >> shift) + d`` when that is a legal threshold."""
        d, hw, m = self.dut, self.hw, self.model
        cfg = dict(cfg)
        if tune is not None:
            t = (m.h_of(addr, cfg["bias"], self.taps) >> cfg["shift"]) + tune
            if 1 <= t <= hw.threshold_max:
                cfg["threshold"] = t
                self.eq_hits += tune == 0
        for name in ("bias", "threshold", "strict", "shift"):
            getattr(d, name).value = cfg[name]
        d.addr.value, d.cmd.value = addr, CMD_UPDATE
        hist_before = m.hist[addr].copy()
        expect = m.update(addr, cfg, self.taps)
        log = f"UPDATE {self.updates} of {addr} (k {m.k}, taps {self.taps[:m.k]}, history {list(hist_before)}, {cfg})"
        if expect_h is not None:
            assert expect[3] == expect_h, f"{log}: model H {expect[3]}, the test expected {expect_h}"
        n = psn_update_cycles(hw, m.k)
        for c in range(1, n):
            await FallingEdge(d.clk)
            self.cycles += 1
            if c == 1:
                d.cmd.value = CMD_NOP
            assert int(d.ready.value) == 0, f"{log}: ready high in cycle {c} of {n}"
            assert int(d.valid.value) == 0, f"{log}: valid high in cycle {c} of {n}"
        await FallingEdge(d.clk)
        self.cycles += 1
        assert int(d.ready.value) == 1, f"{log}: ready still low after {n} cycles"
        assert int(d.valid.value) == 1, f"{log}: valid not high after {n} cycles"
        got = (int(d.spike.value), int(d.sat_hi.value), int(d.sat_lo.value), d.h_out.value.to_signed(),
               d.x_out.value.to_signed())
        assert got == expect, f"{log}: got (spike, sat_hi, sat_lo, H, x) = {got}, expected {expect}"
        self.updates += 1
        self.fired += expect[0]
        self.sat[0] += expect[1]
        self.sat[1] += expect[2]
        return got

    async def readout(self, addr, cfg):
        """Read the history of ``addr`` with the taps e_0 (k - 1 UPDATEs, bias 0); restores the taps after."""
        m = self.model
        k = m.k
        if k < 2:
            return
        saved = list(self.taps)
        await self.set_taps([1] + [0] * (k - 1), k)
        for i in range(k - 1):
            oldest = int(m.hist[addr][0])
            got = await self.update(addr, dict(cfg, bias=0), expect_h=oldest)
            assert got[3] == oldest, f"readout {i} of {addr}: H {got[3]} is not the history entry {oldest}"
            self.hist_checked += 1
        await self.set_taps(saved, k, garbage=False)


def _layer(rng, hw, profile):
    """Random layer configuration: k, taps, shift, threshold, comparator."""
    K = hw.numeric.psn_max_taps
    lo, hi = tap_range(hw)
    k = int(rng.choice([1, K, int(rng.integers(1, K + 1))]))
    style = rng.random()
    if style < 0.6:
        taps = rng.integers(lo, hi + 1, size=k)
    elif style < 0.75:
        taps = rng.integers(lo, 0, size=k)  # all negative
    elif style < 0.85:
        taps = rng.choice([lo, hi], size=k)
    else:
        taps = rng.integers(-3, 4, size=k)
    max_shift = (1 << psn_shift_bits(hw)) - 1
    return int(k), [int(q) for q in taps], dict(
        shift=int(rng.choice([rng.integers(0, max_shift + 1), rng.integers(0, hw.numeric.psn_tap_bits + 4)])),
        threshold=int(rng.choice([rng.integers(1, hw.threshold_max + 1), rng.integers(1, 200)])),
        strict=int(rng.integers(0, 2)), bias=0)


def _bias(rng, hw, profile):
    if profile == "pos_sat":
        return int(rng.integers(0, hw.bias_max + 1))
    if profile == "neg_sat":
        return int(rng.integers(hw.bias_min, 1))
    return int(rng.choice([rng.integers(hw.bias_min, hw.bias_max + 1), rng.integers(-300, 300)]))


async def _new_layer(drv, n_addr, k, taps, garbage=True):
    drv.model.new_layer(k)
    await drv.set_taps(taps, k, garbage=garbage)
    for a in range(n_addr):
        await drv.load(a)


async def _corners(drv, hw, n_addr):
    """Directed cases; returns how many."""
    rng, m = drv.rng, drv.model
    K = hw.numeric.psn_max_taps
    lo, hi = tap_range(hw)
    wmax, wmin, kmax = hw.weight_max, hw.weight_min, hw.numeric.input_bits - 1
    base = dict(shift=0, threshold=1, strict=0, bias=0)
    n = 0

    async def push(addr, w, times):
        for _ in range(times):
            await drv.acc(addr, w, kmax)

    # 1. history before t = k: fill neuron 0 with large values, LOAD it, read zeros with taps e_0
    for k in sorted({min(2, K), min(3, K), K} - {1}):
        await _new_layer(drv, n_addr, k, [int(q) for q in rng.integers(lo, hi + 1, size=k)])
        for _ in range(k + 1):
            await drv.update(0, dict(base, bias=int(rng.integers(hw.bias_min, hw.bias_max + 1))), tune=0)
        await drv.load(0)
        await drv.set_taps([1] + [0] * (k - 1), k)
        for t in range(1, k + 2):
            x = int(rng.integers(1, 1000))
            expect = 0 if t < k else None  # the first k - 1 steps see only the zeros before t = 1
            got = await drv.update(0, dict(base, bias=x))
            if expect is not None:
                assert got[3] == 0, f"history before t = k: step {t} of k = {k} read {got[3]}"
            n += 1
    # 2. saturation at both ends and H at its extremes, k = 1 and k = psn_max_taps
    for k in sorted({1, min(2, K), K}):
        for taps in ([hi] * k, [lo] * k, [lo, hi] * k, [-1] * k, [int(q) for q in rng.integers(lo, 0, size=k)]):
            taps = list(taps[:k])
            await _new_layer(drv, n_addr, k, taps)
            for step in range(k + 2):
                sat_up = step % 2 == 0 if taps[0] != lo else True
                if sat_up:
                    await push(0, wmax, 4)
                    cfg = dict(base, bias=hw.bias_max)
                else:
                    await push(0, wmin, 4)
                    cfg = dict(base, bias=hw.bias_min)
                cfg["strict"] = step % 2
                cfg["shift"] = int(rng.integers(0, (1 << psn_shift_bits(hw))))
                await drv.update(0, cfg, tune=int(rng.integers(-1, 2)))
                n += 1
            await drv.readout(0, base)
            # exactly at the membrane bounds: no saturation
            for b in (hw.membrane_max, hw.membrane_min, hw.membrane_max + 1, hw.membrane_min - 1):
                if hw.bias_min <= b <= hw.bias_max:
                    await drv.update(0, dict(base, bias=b))
                else:  # beyond the bias range: reach it through the accumulator
                    await drv.acc(0, 1 if b > 0 else -1, 0)
                    await drv.update(0, dict(base, bias=b - (1 if b > 0 else -1)))
                n += 1
    # 3. every shift, threshold at equality and one off, under both comparators; positive taps and
    #    inputs scaled so that (H >> shift) lands in the threshold range
    k = K
    await _new_layer(drv, n_addr, k, [int(q) for q in rng.integers(1, hi + 1, size=k)])
    eq_before = drv.eq_hits
    for shift in range(1 << psn_shift_bits(hw)):
        scale = max(1, min(hw.bias_max, (hw.threshold_max << shift) // (k * hi)))
        for strict in (0, 1):
            for d in (0, -1, 1):
                await drv.update(0, dict(base, bias=int(rng.integers(0, scale + 1)), shift=shift, strict=strict),
                                 tune=d)
                n += 1
    assert drv.eq_hits - eq_before >= 1 << (psn_shift_bits(hw) - 1), "too few threshold equalities over the shifts"
    await drv.readout(0, base)
    # 4. neighbours: interleaved neurons keep separate histories (readout of each)
    k = K
    await _new_layer(drv, n_addr, k, [int(q) for q in rng.integers(lo, hi + 1, size=k)])
    for t in range(k + 1):
        for a in range(n_addr):
            await drv.update(a, dict(base, bias=int(rng.integers(hw.bias_min, hw.bias_max + 1))))
            n += 1
    for a in range(n_addr):
        await drv.readout(a, base)
    return n


@cocotb.test()
async def pe_psn_random(dut):
    hw, n_cycles, profile, rng = settings("PE", "CYCLES", 10000)
    await clock_and_reset(dut, {"cmd": CMD_NOP, "tap_we": 0, "n_taps": 1, "shift": 0, "threshold": 1, "strict": 0,
                                "bias": 0})
    K = hw.numeric.psn_max_taps
    # neurons whose histories fit the history memory at k = psn_max_taps
    n_addr = max(1, min(8, psn_history_depth(hw) // max(1, K - 1)))
    model = Model(hw, n_addr)
    drv = Driver(dut, hw, model, rng)
    corners = await _corners(drv, hw, n_addr) if profile == "corners" else 0
    start = drv.cycles
    k, taps, cfg = _layer(rng, hw, profile)
    await _new_layer(drv, n_addr, k, taps)
    next_layer = drv.cycles + 1000
    while drv.cycles - start < n_cycles:
        if drv.cycles >= next_layer:
            if rng.random() < 0.3:
                await drv.readout(int(rng.integers(0, n_addr)), cfg)
            k2, taps, cfg = _layer(rng, hw, profile)
            if k2 != k or rng.random() < 0.5:
                k = k2
                await _new_layer(drv, n_addr, k, taps)  # a new layer: LOAD every neuron
            else:
                await drv.set_taps(taps, k)  # same k, new taps: histories continue
            next_layer = drv.cycles + int(rng.integers(500, 1500))
        r = rng.random()
        addr = int(rng.integers(0, n_addr))
        if r < 0.55:
            await drv.acc(addr, *draw_acc(rng, hw, profile, model.acc[addr]))
        elif r < 0.85:
            c = dict(cfg, bias=_bias(rng, hw, profile))
            await drv.update(addr, c, tune=int(rng.integers(-1, 2)) if rng.random() < 0.35 else None)
        elif r < 0.9:
            await drv.load(addr)
        else:
            await drv.nop(addr)
    assert drv.updates > 0
    dut._log.info(f"{corners} directed cases, {drv.cycles} cycles ({drv.cycles - start} random, profile {profile}), "
                  f"{drv.updates} updates ({drv.fired} spikes, {drv.sat[0]} sat_hi, {drv.sat[1]} sat_lo, "
                  f"{drv.eq_hits} at threshold equality), {drv.hist_checked} history entries read out, "
                  f"{drv.acc_checked} accumulator reads checked")
