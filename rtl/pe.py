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
:func:`atsnn.hwsim.reference.neuron_update` (and, in the iLIF mode, :mod:`atsnn.hwsim.ilif_reference`).
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


def accumulate_command(m: Module, pe, a_rd, a_wr) -> None:
    """The ACC command's datapath, the same in every PE: ``acc[addr] += w << k`` in one cycle.

    ``pe`` has the inputs ``addr``, ``w`` (signed weight) and ``k`` (bit plane); ``a_rd`` is the
    accumulator memory's combinational read port, already addressed by ``pe.addr``, and ``a_wr`` its
    write port. Call it inside the ``CMD_ACC`` case: it drives ``a_wr`` (address, ``a_rd.data + (w << k)``
    with the shift formed at the accumulator width, enable) combinationally, so the sum is written at
    the next clock edge. The contract (sec. 3) guarantees the sum does not overflow.
    """
    shifted = Signal(signed(len(a_wr.data)))
    m.d.comb += shifted.eq(pe.w << pe.k)
    m.d.comb += [a_wr.addr.eq(pe.addr), a_wr.data.eq(a_rd.data + shifted), a_wr.en.eq(1)]


#: deliberate faults for the mutation tests (must stay None in real use): ``"logical_shift"`` makes the
#: leak shift logical instead of arithmetic; with ``ilif``, ``"carry"`` drops the carry bit of the doubled
#: membrane (``2 v`` wraps instead of saturating) and ``"compare"`` turns the fire phase's ``>=`` into ``>``
MUTANTS = (None, "logical_shift", "carry", "compare")


class ProcessingElement(wiring.Component):
    """One PE. With ``ilif=True`` it has the iLIF mode of contract sec. 10 (module ``atsnn_pe_ilif``).

    The iLIF PE has two more inputs that select what an UPDATE does: ``ilif = 0`` the IF/LIF update
    above; ``ilif = 1, fire_phase = 0`` the accumulate step ``v' = sat(2 v + acc + bias)``, no spike,
    accumulator cleared (the controller drives ``bias`` at step 1 and 0 afterwards); ``ilif = 1,
    fire_phase = 1`` the fire step ``v2 = sat(2 v)``, spike at the threshold, soft reset, accumulator
    kept. The doubling is a one-bit left shift into a register one bit wider than the membrane (the
    saturation sees the carry) and shares the adder, saturation and comparator with the leak path.
    ``mutant`` is one of :data:`MUTANTS`; ``logical_leak_shift=True`` is ``mutant="logical_shift"``.
    """

    def __init__(self, hw: HardwareConfig, *, ilif: bool = False, mutant: str | None = None,
                 logical_leak_shift: bool = False):
        if logical_leak_shift:
            mutant = "logical_shift"
        if mutant not in MUTANTS or (mutant in ("carry", "compare") and not ilif):
            raise ValueError(f"mutant must be one of {MUTANTS} ('carry'/'compare' need ilif), not {mutant!r}")
        self.hw = hw
        n = hw.numeric
        self.depth = pe_depth(hw)
        self.addr_bits = max(1, (self.depth - 1).bit_length())
        self.vw, self.aw = n.membrane_bits, n.accumulator_bits
        self._ilif = ilif
        self._mutant = mutant
        shift_bits = max(1, (n.input_bits - 1).bit_length())
        leak_bits = max(1, hw.max_leak_shift.bit_length())
        ports = {
            "cmd": In(2), "addr": In(self.addr_bits),
            "w": In(signed(n.weight_bits)), "k": In(shift_bits), "w_data": In(signed(self.vw)),
            "threshold": In(unsigned(n.threshold_bits)), "leak_shift": In(leak_bits),
            "bias": In(signed(n.bias_bits)), "hard_reset": In(1), "v_reset": In(signed(self.vw)),
            "strict": In(1),  # 1: compare with '>', 0: '>='
            "current_shift": In(max(1, (n.accumulator_bits - 1).bit_length())),  # (a + r) >> c, sec. 2
        }
        if ilif:
            ports.update({"ilif": In(1), "fire_phase": In(1)})  # iLIF mode: accumulate (0) or fire (1) step
        ports.update({"ready": Out(1), "valid": Out(1), "spike": Out(1), "sat_hi": Out(1), "sat_lo": Out(1),
                      "v_out": Out(signed(self.vw)), "acc_out": Out(signed(self.aw))})
        super().__init__(ports)

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
                    accumulate_command(m, self, a_rd, a_wr)
                with m.Case(CMD_LOAD):
                    m.d.comb += [v_wr.addr.eq(self.addr), v_wr.data.eq(self.w_data), v_wr.en.eq(1),
                                 a_wr.addr.eq(self.addr), a_wr.data.eq(0), a_wr.en.eq(1)]
                with m.Case(CMD_UPDATE):
                    m.d.sync += [busy.eq(1), addr_q.eq(self.addr), v_q.eq(v_rd.data), a_q.eq(a_rd.data)]

        # ---- UPDATE stage 2: leak (or double), integrate, saturate, compare, reset, write back
        ilif = self.ilif if self._ilif else Const(0)
        firing = Signal()  # an iLIF fire step: no input, accumulator kept
        m.d.comb += firing.eq(ilif & (self.fire_phase if self._ilif else 0))
        shr = Signal(signed(vw))
        if self._mutant == "logical_shift":
            m.d.comb += shr.eq(v_q.as_unsigned() >> self.leak_shift)
        else:
            m.d.comb += shr.eq(v_q >> self.leak_shift)  # arithmetic shift on a signed value
        leaked = Mux(self.leak_shift == 0, v_q, v_q - shr)
        v1 = Signal(signed(vw + 1))
        if self._ilif:
            dbl = Signal(signed(vw if self._mutant == "carry" else vw + 1))
            m.d.comb += dbl.eq(v_q << 1)  # iLIF amplification k = 2: one-bit left shift, carry kept
            m.d.comb += v1.eq(Mux(ilif, dbl, leaked))
        else:
            m.d.comb += v1.eq(leaked)
        # the current enters as (a + r) >> c, r = 2**(c - 1) (0 for c = 0): round to nearest, ties up
        rnd = Signal(aw)
        m.d.comb += rnd.eq((Const(1, aw + 1) << self.current_shift) >> 1)
        a_sum = Signal(signed(aw + 1))
        m.d.comb += a_sum.eq(a_q + rnd)
        a_sh = Signal(signed(aw + 1))
        m.d.comb += a_sh.eq(a_sum >> self.current_shift)  # arithmetic shift on a signed value
        s = Signal(signed(max(aw + 1, vw + 1, self.bias.shape().width) + 2))
        m.d.comb += s.eq(v1 + Mux(firing, 0, a_sh + self.bias))
        hi, lo = Signal(), Signal()
        v2 = Signal(signed(vw))
        m.d.comb += [hi.eq(s > vmax), lo.eq(s < vmin)]
        m.d.comb += v2.eq(Mux(hi, vmax, Mux(lo, vmin, s)))
        thr = Signal(signed(vw + 1))
        m.d.comb += thr.eq(self.threshold)
        strict = Signal()
        m.d.comb += strict.eq(self.strict | (firing if self._mutant == "compare" else 0))
        fire = Signal()
        m.d.comb += fire.eq(Mux(ilif & ~firing, 0, Mux(strict, v2 > thr, v2 >= thr)))
        v_new = Signal(signed(vw))
        m.d.comb += v_new.eq(Mux(fire, Mux(self.hard_reset & ~ilif, self.v_reset, v2 - thr), v2))
        with m.If(busy):
            m.d.comb += [v_wr.addr.eq(addr_q), v_wr.data.eq(v_new), v_wr.en.eq(1),
                         a_wr.addr.eq(addr_q), a_wr.data.eq(0), a_wr.en.eq(~firing)]
            m.d.sync += [busy.eq(0), self.valid.eq(1), self.spike.eq(fire), self.sat_hi.eq(hi),
                         self.sat_lo.eq(lo), self.v_out.eq(v_new)]
        return m
