"""Processing element for sliding PSN layers (docs/hardware.md sec. 11; module ``atsnn_pe_psn``).

Commands (``cmd``, same encoding as :mod:`atsnn.rtl.pe`):

- ``ACC`` (1 cycle): ``acc[addr] += w << k`` exactly as in ``atsnn_pe`` (sec. 3).
- ``LOAD`` (1 cycle): clears the accumulator and the history of neuron ``addr`` (start of an
  inference; a PSN neuron has no membrane, so there is no load value).
- ``UPDATE`` (``cycles.update + k * cycles.psn_tap`` cycles, ``ready`` low after the issue
  cycle): for neuron ``addr`` with ``k = n_taps`` taps,

  1. ``x = clamp(acc + bias, membrane_min, membrane_max)`` (``sat_hi`` / ``sat_lo``);
  2. ``H = sum_{i<k-1} q_i h_i + q_{k-1} x``, exact, one multiply-accumulate per tap
     (``cycles.psn_tap`` cycles each) on one ``membrane_bits x psn_tap_bits`` multiplier;
  3. ``spike = (H >> shift) >= threshold`` (``>`` with ``strict``), ``>>`` arithmetic;
  4. the history drops ``h_0`` and appends ``x``; the accumulator is cleared.

  ``spike``, ``sat_hi``, ``sat_lo``, ``h_out`` (= H) and ``x_out`` (= x) are valid while ``valid``
  is high, the cycle after the UPDATE's last cycle (when ``ready`` is high again).

Taps. A tap register file of ``numeric.psn_max_taps`` entries of ``numeric.psn_tap_bits`` (signed),
written through ``tap_we`` / ``tap_addr`` / ``tap_data`` in any cycle, independently of ``cmd``
(one tap per cycle; the write takes effect at the next clock edge). An UPDATE uses entries
``0 .. k-1``: ``q_i`` at entry ``i``, so ``q_{k-1}`` (entry ``k - 1``) multiplies the current input.
Tap ``i`` is read in the UPDATE's ``i``-th multiply cycle, so the controller writes a layer's taps
before its first UPDATE (they are per layer: sec. 7 charges them to every PE of the layer).

Per-layer inputs ``n_taps`` (``1 <= k <= psn_max_taps``), ``shift``, ``threshold``, ``strict`` and
``bias`` must be held from an UPDATE's issue cycle until its last cycle, as in ``atsnn_pe``.

Storage (the contract's data memory, split into three physical memories):

- accumulators: ``pe_depth(hw)`` entries of ``numeric.accumulator_bits``, the same neuron
  addresses as ``atsnn_pe``;
- history: ``pe.data_memory_bytes * 8 // membrane_bits`` words of ``membrane_bits`` (512 for
  atsnn28); neuron ``addr`` of a ``k``-tap layer keeps ``h_0 .. h_{k-2}``, oldest first, at words
  ``addr * (k - 1) .. addr * (k - 1) + k - 2``. Sec. 7 maps ``n`` PSN neurons to a PE only when
  ``n * ((k - 1) * membrane_bits + accumulator_bits)`` bits fit the data memory, so their history
  always fits; the controller keeps ``addr * (k - 1) + k - 2`` below the history depth;
- a one-bit ``fresh`` flag per neuron (set by LOAD, cleared by UPDATE): the first UPDATE after a
  LOAD reads its history as zeros (``X[j] = 0`` for ``j < 1``) whatever the memory held, so LOAD
  needs one cycle instead of ``k - 1`` writes.

The history is shifted in place: the multiply cycle of tap ``i >= 1`` writes the operand it read
(``h_i``, or ``x`` for ``i = k - 1``) into word ``i - 1`` (one read and one write port, the read
registered, so the memory can be block RAM). After the first UPDATE the memory holds the exact
history, zeros included. A neuron's layout depends on ``k``: LOAD every neuron when a layer starts.

``H`` is ``membrane_bits + psn_tap_bits + ceil(log2 psn_max_taps)`` bits (sec. 11), wide enough
for ``psn_max_taps`` products of extreme values; ``shift`` has enough bits to shift ``H`` down to
its sign. Golden model: :func:`atsnn.hwsim.psn_reference.psn_update`.

``mutant`` builds deliberate faults for the mutation test (must stay None): ``"logical"`` shifts
``H`` logically instead of arithmetically, ``"order"`` writes each history entry back one word too
high (the history is never shifted: an off-by-one in its order).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from atsnn.config import HardwareConfig
from atsnn.rtl.pe import CMD_ACC, CMD_LOAD, CMD_UPDATE, accumulate_command, pe_depth

MUTANTS = (None, "logical", "order")


def psn_h_bits(hw: HardwareConfig) -> int:
    """Width of the FIR sum H: ``membrane_bits + psn_tap_bits + ceil(log2 psn_max_taps)`` (sec. 11)."""
    n = hw.numeric
    return n.membrane_bits + n.psn_tap_bits + (n.psn_max_taps - 1).bit_length()


def psn_shift_bits(hw: HardwareConfig) -> int:
    """Width of the ``shift`` input: every shift of H down to its sign bit (0 .. h_bits - 1)."""
    return max(1, (psn_h_bits(hw) - 1).bit_length())


def psn_history_depth(hw: HardwareConfig) -> int:
    """History words (``membrane_bits`` each) of the PSN PE: the data memory in membrane words."""
    return hw.pe.data_memory_bytes * 8 // hw.numeric.membrane_bits


def psn_update_cycles(hw: HardwareConfig, k: int) -> int:
    """Cycles of one UPDATE with ``k`` taps, issue cycle included (sec. 11)."""
    return hw.cycles.update + k * hw.cycles.psn_tap


class PsnProcessingElement(wiring.Component):
    def __init__(self, hw: HardwareConfig, *, mutant: str | None = None):
        if mutant not in MUTANTS:
            raise ValueError(f"mutant must be one of {MUTANTS}, not {mutant!r}")
        if hw.cycles.update < 2:
            raise ValueError(f"the PSN PE needs cycles.update >= 2 (issue and write-back), not {hw.cycles.update}")
        self.hw = hw
        n = hw.numeric
        self.depth = pe_depth(hw)
        self.addr_bits = max(1, (self.depth - 1).bit_length())
        self.vw, self.aw, self.tb = n.membrane_bits, n.accumulator_bits, n.psn_tap_bits
        self.max_taps = n.psn_max_taps
        self.hbits = psn_h_bits(hw)
        self.hist_depth = psn_history_depth(hw)
        self._mutant = mutant
        shift_bits = max(1, (n.input_bits - 1).bit_length())
        super().__init__({
            "cmd": In(2), "addr": In(self.addr_bits),
            "w": In(signed(n.weight_bits)), "k": In(shift_bits),
            "bias": In(signed(n.bias_bits)), "threshold": In(unsigned(n.threshold_bits)),
            "strict": In(1),  # 1: compare with '>', 0: '>='
            "n_taps": In(range(self.max_taps + 1)),  # k of the layer, 1 .. psn_max_taps
            "shift": In(psn_shift_bits(hw)),
            "tap_we": In(1), "tap_addr": In(range(max(2, self.max_taps))), "tap_data": In(signed(self.tb)),
            "ready": Out(1), "valid": Out(1), "spike": Out(1), "sat_hi": Out(1), "sat_lo": Out(1),
            "h_out": Out(signed(self.hbits)), "x_out": Out(signed(self.vw)), "acc_out": Out(signed(self.aw)),
        })

    def elaborate(self, platform):
        m = Module()
        hw = self.hw
        vw, aw, K = self.vw, self.aw, self.max_taps
        vmax, vmin = (1 << (vw - 1)) - 1, -(1 << (vw - 1))
        per_tap, tail = hw.cycles.psn_tap, hw.cycles.update - 2

        m.submodules.amem = amem = Memory(shape=signed(aw), depth=self.depth, init=[])
        m.submodules.fmem = fmem = Memory(shape=1, depth=self.depth, init=[])
        m.submodules.tmem = tmem = Memory(shape=signed(self.tb), depth=max(2, K), init=[])
        a_rd, a_wr = amem.read_port(domain="comb"), amem.write_port()
        f_rd, f_wr = fmem.read_port(domain="comb"), fmem.write_port()
        t_rd, t_wr = tmem.read_port(domain="comb"), tmem.write_port()

        m.d.comb += [a_rd.addr.eq(self.addr), f_rd.addr.eq(self.addr), self.acc_out.eq(a_rd.data),
                     t_wr.addr.eq(self.tap_addr), t_wr.data.eq(self.tap_data), t_wr.en.eq(self.tap_we)]

        # registers of an UPDATE in flight
        addr_q = Signal.like(self.addr)
        km1 = Signal(range(max(2, K)))  # k - 1 of the input (truncated: k = 0 is outside the contract)
        km1_q = Signal(range(max(2, K)))
        fresh_q = Signal()  # history reads as zeros (first UPDATE after a LOAD)
        x_q = Signal(signed(vw))
        hi_q, lo_q = Signal(), Signal()
        h_acc = Signal(signed(self.hbits))
        j = Signal(range(max(2, K)))  # tap index of the multiply-accumulate
        sub = Signal(range(per_tap)) if per_tap > 1 else None  # cycle within a tap (cycles.psn_tap > 1)
        tcnt = Signal(range(max(2, tail))) if tail > 0 else None  # extra cycles (cycles.update > 2)
        m.d.comb += km1.eq(self.n_taps - 1)

        # x = clamp(acc + bias): computed in the issue cycle from the combinational read
        s = Signal(signed(max(aw, self.bias.shape().width) + 1))
        hi, lo = Signal(), Signal()
        x = Signal(signed(vw))
        m.d.comb += [s.eq(a_rd.data + self.bias), hi.eq(s > vmax), lo.eq(s < vmin),
                     x.eq(Mux(hi, vmax, Mux(lo, vmin, s)))]

        # history: registered read (address one cycle ahead), one write per multiply cycle
        if K > 1:
            m.submodules.hmem = hmem = Memory(shape=signed(vw), depth=self.hist_depth, init=[])
            h_rd, h_wr = hmem.read_port(), hmem.write_port()
            hab = len(h_rd.addr)
            base_q = Signal(hab)
            base_in = Signal(hab)
            # addr * (k - 1) by shift-and-add over the bits of k - 1 (no multiplier for addressing)
            m.d.comb += base_in.eq(sum(Mux(km1[b], self.addr << b, 0) for b in range(len(km1))))
            hist_data = h_rd.data
        else:
            hist_data = 0

        # the tap multiply-accumulate (taps read combinationally at j)
        m.d.comb += t_rd.addr.eq(j)
        operand = Signal(signed(vw))
        m.d.comb += operand.eq(Mux(j == km1_q, x_q, Mux(fresh_q, 0, hist_data)))
        prod = Signal(signed(vw + self.tb))
        m.d.comb += prod.eq(operand * t_rd.data)
        last_sub = (sub == per_tap - 1) if per_tap > 1 else 1

        # fire: (H >> shift) compared with the threshold
        thr = Signal(signed(len(self.threshold) + 1))
        m.d.comb += thr.eq(self.threshold)
        if self._mutant == "logical":
            hs = Signal(unsigned(self.hbits))
            m.d.comb += hs.eq(h_acc.as_unsigned() >> self.shift)
        else:
            hs = Signal(signed(self.hbits))
            m.d.comb += hs.eq(h_acc >> self.shift)  # arithmetic shift on a signed value
        fire = Signal()
        m.d.comb += fire.eq(Mux(self.strict, hs > thr, hs >= thr))

        m.d.sync += self.valid.eq(0)
        with m.FSM(name="psn"):
            with m.State("IDLE"):
                m.d.comb += self.ready.eq(1)
                if K > 1:
                    m.d.comb += h_rd.addr.eq(base_in)  # h_0 of the UPDATE being issued
                with m.Switch(self.cmd):
                    with m.Case(CMD_ACC):
                        accumulate_command(m, self, a_rd, a_wr)
                    with m.Case(CMD_LOAD):
                        m.d.comb += [a_wr.addr.eq(self.addr), a_wr.data.eq(0), a_wr.en.eq(1),
                                     f_wr.addr.eq(self.addr), f_wr.data.eq(1), f_wr.en.eq(1)]
                    with m.Case(CMD_UPDATE):
                        m.d.sync += [addr_q.eq(self.addr), km1_q.eq(km1), fresh_q.eq(f_rd.data),
                                     x_q.eq(x), hi_q.eq(hi), lo_q.eq(lo), h_acc.eq(0), j.eq(0)]
                        if sub is not None:
                            m.d.sync += sub.eq(0)
                        if K > 1:
                            m.d.sync += base_q.eq(base_in)
                        m.next = "MAC"
            with m.State("MAC"):
                if K > 1:  # next tap's word on the last cycle of a tap, else hold
                    m.d.comb += h_rd.addr.eq(base_q + j + Mux(last_sub, 1, 0))
                with m.If(sub == 0 if sub is not None else 1):
                    m.d.sync += h_acc.eq(h_acc + prod)
                    if K > 1:
                        wr_addr = base_q + j if self._mutant == "order" else base_q + j - 1
                        m.d.comb += [h_wr.addr.eq(wr_addr), h_wr.data.eq(operand), h_wr.en.eq(j != 0)]
                if per_tap > 1:
                    m.d.sync += sub.eq(Mux(last_sub, 0, sub + 1))
                with m.If(last_sub):
                    m.d.sync += j.eq(j + 1)
                    with m.If(j == km1_q):
                        if tcnt is not None:
                            m.d.sync += tcnt.eq(0)
                        m.next = "TAIL" if tail > 0 else "FINAL"
            if tail > 0:
                with m.State("TAIL"):  # cycles.update beyond issue and write-back
                    m.d.sync += tcnt.eq(tcnt + 1)
                    with m.If(tcnt == tail - 1):
                        m.next = "FINAL"
            with m.State("FINAL"):
                m.d.comb += [a_wr.addr.eq(addr_q), a_wr.data.eq(0), a_wr.en.eq(1),
                             f_wr.addr.eq(addr_q), f_wr.data.eq(0), f_wr.en.eq(1)]
                m.d.sync += [self.valid.eq(1), self.spike.eq(fire), self.sat_hi.eq(hi_q), self.sat_lo.eq(lo_q),
                             self.h_out.eq(h_acc), self.x_out.eq(x_q)]
                m.next = "IDLE"
        return m
