"""Processing element: neuron state memory and datapath (contract sec. 3-4, 6).

The PE keeps the membrane and accumulator of each of its neurons in its data
memory (``pe.data_memory_bytes / state_bytes`` entries) and executes one
command at a time from the array controller:

- ``ACC`` (``cycles.synop`` = 1 cycle): ``acc[addr] += w << k`` (a synaptic
  accumulation; ``k`` is the bit plane of a multi-bit input event).
- ``UPDATE`` (``cycles.update`` = 2 cycles): read ``v``/``acc`` of ``addr``,
  then leak by arithmetic shift-and-subtract, add accumulator and bias,
  saturate (flags ``sat_hi``/``sat_lo``), compare (``>=`` or ``>``), soft or
  hard reset, write back, clear the accumulator and raise ``spike``.
- ``LOAD`` (1 cycle): ``v[addr] = w_data``, ``acc[addr] = 0`` (initial membrane).

``ready`` is high when a new command may be issued; results of an UPDATE
(``spike``, ``sat_hi``, ``sat_lo``, ``v_out``) are valid while ``valid`` is high
(one cycle after the update's last cycle). Every width comes from the
:class:`atsnn.config.HardwareConfig`. The golden model is
:func:`hwsim.reference.neuron_update`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from atsnn.config import HardwareConfig

CMD_NOP, CMD_ACC, CMD_UPDATE, CMD_LOAD = 0, 1, 2, 3


def pe_depth(hw: HardwareConfig) -> int:
    """Neuron entries of the PE data memory (membrane + accumulator per entry)."""
    state = -(-(hw.numeric.membrane_bits + hw.numeric.accumulator_bits) // 8)
    return hw.pe.data_memory_bytes // state


class ProcessingElement(wiring.Component):
    """One PE; ``logical_leak_shift`` is a deliberate fault for mutation tests (must stay False)."""

    def __init__(self, hw: HardwareConfig, *, logical_leak_shift: bool = False):
        self.hw = hw
        n = hw.numeric
        self.depth = pe_depth(hw)
        self.addr_bits = max(1, (self.depth - 1).bit_length())
        self.vw, self.aw = n.membrane_bits, n.accumulator_bits
        self._mutant = logical_leak_shift
        shift_bits = max(1, (n.input_bits - 1).bit_length())
        leak_bits = max(1, hw.max_leak_shift.bit_length())
        super().__init__({
            "cmd": In(2), "addr": In(self.addr_bits),
            "w": In(signed(n.weight_bits)), "k": In(shift_bits), "w_data": In(signed(self.vw)),
            "threshold": In(unsigned(n.threshold_bits)), "leak_shift": In(leak_bits),
            "bias": In(signed(n.bias_bits)), "hard_reset": In(1), "v_reset": In(signed(self.vw)),
            "strict": In(1),  # 1: compare with '>', 0: '>='
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

        # ---- ACC / LOAD / UPDATE stage 1
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

        # ---- UPDATE stage 2: leak, integrate, saturate, compare, reset, write back
        shr = Signal(signed(vw))
        if self._mutant:
            m.d.comb += shr.eq(v_q.as_unsigned() >> self.leak_shift)
        else:
            m.d.comb += shr.eq(v_q >> self.leak_shift)  # arithmetic shift on a signed value
        v1 = Signal(signed(vw + 1))
        m.d.comb += v1.eq(Mux(self.leak_shift == 0, v_q, v_q - shr))
        s = Signal(signed(max(aw, vw) + 3))
        m.d.comb += s.eq(v1 + a_q + self.bias)
        hi, lo = Signal(), Signal()
        v2 = Signal(signed(vw))
        m.d.comb += [hi.eq(s > vmax), lo.eq(s < vmin)]
        m.d.comb += v2.eq(Mux(hi, vmax, Mux(lo, vmin, s)))
        thr = Signal(signed(vw + 1))
        m.d.comb += thr.eq(self.threshold)
        fire = Signal()
        m.d.comb += fire.eq(Mux(self.strict, v2 > thr, v2 >= thr))
        v_new = Signal(signed(vw))
        m.d.comb += v_new.eq(Mux(fire, Mux(self.hard_reset, self.v_reset, v2 - thr), v2))
        with m.If(busy):
            m.d.comb += [v_wr.addr.eq(addr_q), v_wr.data.eq(v_new), v_wr.en.eq(1),
                         a_wr.addr.eq(addr_q), a_wr.data.eq(0), a_wr.en.eq(1)]
            m.d.sync += [busy.eq(0), self.valid.eq(1), self.spike.eq(fire), self.sat_hi.eq(hi),
                         self.sat_lo.eq(lo), self.v_out.eq(v_new)]
        return m
