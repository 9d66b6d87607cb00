"""Processing element with an iLIF mode (docs/hardware.md sec. 10; module ``atsnn_pe_ilif``).

The same PE as :class:`rtl.pe.ProcessingElement` (memories, commands, timing: ACC and LOAD one
cycle, UPDATE two) with two more inputs that select what an UPDATE does:

- ``ilif = 0``: the IF/LIF update of contract sec. 4 (leak, integrate, saturate, fire, reset);
- ``ilif = 1, fire_phase = 0``: iLIF accumulate step, ``v' = sat(2 v + acc + bias)``, no spike,
  accumulator cleared (the controller drives ``bias`` at step 1 and 0 afterwards);
- ``ilif = 1, fire_phase = 1``: iLIF fire step, ``v2 = sat(2 v)``, spike when ``v2 >= threshold``
  (``>`` with ``strict``), soft reset ``v' = v2 - threshold``; the accumulator is left alone.

The doubling is a one-bit left shift into a register one bit wider than the membrane, so that the
saturation sees the carry; it shares the adder, the saturation and the comparator with the leak
path. Golden model: :func:`hwsim.ilif_reference.ilif_accumulate` / ``ilif_fire`` and, for
``ilif = 0``, :func:`hwsim.reference.neuron_update`.

``mutant`` builds deliberate faults for the mutation test (must stay None): ``"carry"`` drops the
carry bit of the doubled membrane (``2 v`` wraps instead of saturating), ``"compare"`` turns the
fire phase's ``>=`` into ``>``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from atsnn.config import HardwareConfig
from rtl.pe import CMD_ACC, CMD_LOAD, CMD_UPDATE, pe_depth

MUTANTS = (None, "carry", "compare")


class IlifProcessingElement(wiring.Component):
    def __init__(self, hw: HardwareConfig, *, mutant: str | None = None):
        if mutant not in MUTANTS:
            raise ValueError(f"mutant must be one of {MUTANTS}, not {mutant!r}")
        self.hw = hw
        n = hw.numeric
        self.depth = pe_depth(hw)
        self.addr_bits = max(1, (self.depth - 1).bit_length())
        self.vw, self.aw = n.membrane_bits, n.accumulator_bits
        self._mutant = mutant
        shift_bits = max(1, (n.input_bits - 1).bit_length())
        leak_bits = max(1, hw.max_leak_shift.bit_length())
        super().__init__({
            "cmd": In(2), "addr": In(self.addr_bits),
            "w": In(signed(n.weight_bits)), "k": In(shift_bits), "w_data": In(signed(self.vw)),
            "threshold": In(unsigned(n.threshold_bits)), "leak_shift": In(leak_bits),
            "bias": In(signed(n.bias_bits)), "hard_reset": In(1), "v_reset": In(signed(self.vw)),
            "strict": In(1),  # 1: compare with '>', 0: '>='
            "ilif": In(1), "fire_phase": In(1),  # iLIF mode: accumulate (0) or fire (1) step
            "ready": Out(1), "valid": Out(1), "spike": Out(1), "sat_hi": Out(1), "sat_lo": Out(1),
            "v_out": Out(signed(self.vw)), "acc_out": Out(signed(self.aw)),
        })

    def elaborate(self, platform):
        m = Module()
        vw, aw = self.vw, self.aw
        vmax, vmin = (1 << (vw - 1)) - 1, -(1 << (vw - 1))
        m.submodules.vmem = vmem = Memory(shape=signed(vw), depth=self.depth, init=[])
        m.submodules.amem = amem = Memory(shape=signed(aw), depth=self.depth, init=[])
        v_rd = vmem.read_port(domain="comb")
        a_rd = amem.read_port(domain="comb")
        v_wr = vmem.write_port()
        a_wr = amem.write_port()

        busy = Signal()  # second cycle of an UPDATE
        addr_q = Signal.like(self.addr)
        v_q = Signal(signed(vw))
        a_q = Signal(signed(aw))
        m.d.comb += [v_rd.addr.eq(self.addr), a_rd.addr.eq(self.addr), self.ready.eq(~busy),
                     self.acc_out.eq(a_rd.data)]

        # ---- ACC / LOAD / UPDATE stage 1 (as rtl.pe)
        m.d.sync += self.valid.eq(0)
        with m.If(~busy):
            with m.Switch(self.cmd):
                with m.Case(CMD_ACC):
                    shifted = Signal(signed(aw))
                    m.d.comb += shifted.eq(self.w << self.k)
                    m.d.comb += [a_wr.addr.eq(self.addr), a_wr.data.eq(a_rd.data + shifted), a_wr.en.eq(1)]
                with m.Case(CMD_LOAD):
                    m.d.comb += [v_wr.addr.eq(self.addr), v_wr.data.eq(self.w_data), v_wr.en.eq(1),
                                 a_wr.addr.eq(self.addr), a_wr.data.eq(0), a_wr.en.eq(1)]
                with m.Case(CMD_UPDATE):
                    m.d.sync += [busy.eq(1), addr_q.eq(self.addr), v_q.eq(v_rd.data), a_q.eq(a_rd.data)]

        # ---- UPDATE stage 2
        firing = Signal()  # an iLIF fire step: no input, accumulator kept
        m.d.comb += firing.eq(self.ilif & self.fire_phase)
        shr = Signal(signed(vw))
        m.d.comb += shr.eq(v_q >> self.leak_shift)  # arithmetic shift on a signed value
        dbl = Signal(signed(vw if self._mutant == "carry" else vw + 1))
        m.d.comb += dbl.eq(v_q << 1)  # iLIF amplification k = 2: one-bit left shift, carry kept
        v1 = Signal(signed(vw + 1))
        m.d.comb += v1.eq(Mux(self.ilif, dbl, Mux(self.leak_shift == 0, v_q, v_q - shr)))
        s = Signal(signed(max(aw, vw + 1, self.bias.shape().width) + 2))
        m.d.comb += s.eq(v1 + Mux(firing, 0, a_q + self.bias))
        hi, lo = Signal(), Signal()
        v2 = Signal(signed(vw))
        m.d.comb += [hi.eq(s > vmax), lo.eq(s < vmin)]
        m.d.comb += v2.eq(Mux(hi, vmax, Mux(lo, vmin, s)))
        thr = Signal(signed(vw + 1))
        m.d.comb += thr.eq(self.threshold)
        strict = Signal()
        m.d.comb += strict.eq(self.strict | (firing if self._mutant == "compare" else 0))
        fire = Signal()
        m.d.comb += fire.eq(Mux(self.ilif & ~self.fire_phase, 0, Mux(strict, v2 > thr, v2 >= thr)))
        v_new = Signal(signed(vw))
        m.d.comb += v_new.eq(Mux(fire, Mux(self.hard_reset & ~self.ilif, self.v_reset, v2 - thr), v2))
        with m.If(busy):
            m.d.comb += [v_wr.addr.eq(addr_q), v_wr.data.eq(v_new), v_wr.en.eq(1),
                         a_wr.addr.eq(addr_q), a_wr.data.eq(0), a_wr.en.eq(~firing)]
            m.d.sync += [busy.eq(0), self.valid.eq(1), self.spike.eq(fire), self.sat_hi.eq(hi),
                         self.sat_lo.eq(lo), self.v_out.eq(v_new)]
        return m


def export_ilif_pe(hw: HardwareConfig, out_dir, *, lint: bool = True):
    """Write ``atsnn_pe_ilif.v`` into ``out_dir`` (and lint it with Verilator); returns the path."""
    from pathlib import Path

    from rtl.export import lint as verilator_lint
    from rtl.export import verilog_text, write_if_changed
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "atsnn_pe_ilif.v"
    write_if_changed(path, verilog_text(IlifProcessingElement(hw), "atsnn_pe_ilif"))
    if lint:
        verilator_lint(path)
    return path
