"""Adaptive-timestep unit: the exit test of contract sec. 5 (seed 001 eq. 15-18) in integers.

The output integrator writes each class membrane ``u_i`` once per timestep
through ``u_we``/``u_addr``/``u_data`` (``u_first`` marks the first class of a
timestep); the unit keeps them in its data memory and tracks the maximum and
its lowest index as they are written. A ``start`` pulse then runs the test:

- per class, ``cycles.at_exp`` (3) cycles: read ``u_i``; ``d = min(m - u_i,
  d_clip)``, ``idx = (d * exp_mult) >> exp_scale_bits``, table reads ``T[j]``
  and ``T[j+1]``; ``sigma = T[j] - (((T[j] - T[j+1]) * f) >> F)`` (0 past the
  table) added to ``S``;
- then ``cycles.at_decision`` (4) cycles: ``CL_t * S``, the exit compare
  ``ONE * 2**Q > CL_t * S``, and ``CL_{t+1} = (CL_t * tau) >> Q``.

``CL`` is loaded from ``cl_init`` when ``start`` comes with ``first = 1``
(timestep 1). ``done`` pulses for one cycle when the results (``exit``,
``winner``, ``sigma_sum``) are valid. The golden model is
``atsnn.hwsim.reference.at_sigma`` / ``cl_sequence`` / ``at_exit``.
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from atsnn.config import HardwareConfig


def at_max_classes(hw: HardwareConfig) -> int:
    """Class entries that fit the AT data memory next to the exp table."""
    table = hw.at.exp_table_entries * math.ceil(hw.at.exp_table_value_bits / 8)
    state = math.ceil((hw.at.membrane_bits + hw.numeric.accumulator_bits) / 8)
    return (hw.at.data_memory_bytes - table) // state


class AtUnit(wiring.Component):
    def __init__(self, hw: HardwareConfig):
        from atsnn.hwsim.reference import exp_table
        self.hw = hw
        a = hw.at
        self.classes_max = at_max_classes(hw)
        self.cb = max(1, (self.classes_max - 1).bit_length())
        self.uw = a.membrane_bits
        self.table = [int(v) for v in exp_table(hw)]
        self.d_bits = self.uw + 1
        self.mult_bits = a.exp_scale_bits + a.exp_index_frac_bits + 8
        qb = a.cl_frac_bits + 1
        super().__init__({
            "u_we": In(1), "u_first": In(1), "u_addr": In(self.cb), "u_data": In(signed(self.uw)),
            "classes": In(self.cb + 1), "exp_mult": In(unsigned(self.mult_bits)), "d_clip": In(unsigned(self.d_bits)),
            "cl_init": In(unsigned(qb)), "tau": In(unsigned(qb)),
            "start": In(1), "first": In(1),
            "busy": Out(1), "done": Out(1), "exit": Out(1), "winner": Out(self.cb),
            "sigma_sum": Out(unsigned(a.exp_table_value_bits + self.cb + 1)),
            "cl": Out(unsigned(qb)),
        })

    def elaborate(self, platform):
        m = Module()
        a = self.hw.at
        e, f_bits, sb, q = a.exp_table_entries, a.exp_index_frac_bits, a.exp_scale_bits, a.cl_frac_bits
        one = self.hw.exp_one
        m.submodules.umem = umem = Memory(shape=signed(self.uw), depth=self.classes_max, init=[])
        m.submodules.table = table = Memory(shape=unsigned(a.exp_table_value_bits), depth=e, init=self.table)
        u_wr = umem.write_port()
        u_rd = umem.read_port()  # synchronous: data one cycle after the address
        t_rd0 = table.read_port()
        t_rd1 = table.read_port()

        # ---- writes from the integrator, with running max / argmax
        u_max = Signal(signed(self.uw))
        u_arg = Signal(self.cb)
        m.d.comb += [u_wr.addr.eq(self.u_addr), u_wr.data.eq(self.u_data), u_wr.en.eq(self.u_we)]
        with m.If(self.u_we):
            with m.If(self.u_first | (self.u_data > u_max)):
                m.d.sync += [u_max.eq(self.u_data), u_arg.eq(self.u_addr)]

        # ---- the test
        i = Signal(self.cb + 1)
        phase = Signal(2)
        frac = Signal(f_bits + 1)
        past = Signal()
        s_acc = Signal.like(self.sigma_sum)
        cl = Signal.like(self.cl)
        prod = Signal(unsigned(len(cl) + len(s_acc)))
        d = Signal(signed(self.d_bits + 1))
        dc = Signal(unsigned(self.d_bits))
        idx = Signal(unsigned(self.d_bits + self.mult_bits))
        m.d.comb += [d.eq(u_max - u_rd.data), dc.eq(Mux(d > self.d_clip, self.d_clip, d)),
                     idx.eq((dc * self.exp_mult) >> sb)]
        jj = Signal.like(idx)
        m.d.comb += jj.eq(idx >> f_bits)
        jc = Signal(range(e))
        m.d.comb += jc.eq(Mux(jj >= e - 1, e - 2, jj))
        # table addresses come straight from the index so the synchronous reads land in the next cycle
        m.d.comb += [self.cl.eq(cl), self.sigma_sum.eq(s_acc), u_rd.addr.eq(i), t_rd0.addr.eq(jc),
                     t_rd1.addr.eq(jc + 1)]
        m.d.sync += self.done.eq(0)
        t0 = t_rd0.data
        t1 = t_rd1.data
        diff = Signal(unsigned(a.exp_table_value_bits))
        m.d.comb += diff.eq(t0 - t1)
        sigma = Signal(unsigned(a.exp_table_value_bits))
        m.d.comb += sigma.eq(Mux(past, 0, t0 - ((diff * frac) >> f_bits)))

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [i.eq(0), phase.eq(0), s_acc.eq(0), self.winner.eq(u_arg)]
                    with m.If(self.first):
                        m.d.sync += cl.eq(self.cl_init)
                    m.next = "CLASS"
            with m.State("CLASS"):
                m.d.comb += self.busy.eq(1)
                with m.Switch(phase):
                    with m.Case(0):  # u_rd.addr = i: membrane arrives next cycle
                        m.d.sync += phase.eq(1)
                    with m.Case(1):  # index arithmetic; the table reads T[j], T[j+1] land next cycle
                        m.d.sync += [past.eq(jj >= e - 1), frac.eq(idx & ((1 << f_bits) - 1)), phase.eq(2)]
                    with m.Case(2):  # interpolate and accumulate
                        m.d.sync += [s_acc.eq(s_acc + sigma), phase.eq(0), i.eq(i + 1)]
                        with m.If(i + 1 == self.classes):
                            m.next = "D0"
            with m.State("D0"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += prod.eq(cl * s_acc)
                m.next = "D1"
            with m.State("D1"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += self.exit.eq((one << q) > prod)
                m.next = "D2"
            with m.State("D2"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += cl.eq((cl * self.tau) >> q)
                m.next = "D3"
            with m.State("D3"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += self.done.eq(1)
                m.next = "IDLE"
        return m
