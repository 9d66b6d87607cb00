"""Array top generated for a compiled Program: PEs, AT unit, event bus and controller.

Like hls4ml, the array is elaborated for one compiled program: its connectivity, weights, biases,
thresholds and initial membranes become ROM contents, and the controller's layer sequence is fixed
at elaboration. Every synapse (dense, convolution, strided or transposed convolution, a preceding
non-overlapping sum-pool, flatten; several synapses per layer for residual additions) is compiled
into per-PE connection lists: for each input event, the (neuron, weight) pairs of each PE's
neurons that the event reaches. Supported programs: one pass per layer, state resident, output
layer on the AT unit (the digits MLP and CNN); others raise :class:`RtlError` naming the layer.

Host interface (see docs/rtl.md): write the input pixels (``in_we``, ``in_addr``, ``in_data``), set
``timesteps``, ``cl_init`` and ``tau`` (``use_exit`` = 0 runs all timesteps), pulse ``start``; when
``done`` rises, ``result_class``, ``exit_t`` and ``cycles`` hold the predicted class, the exit
timestep and the compute cycle count, which equals hwsim's cycles minus the input-load cycles (the
host writes the input before ``start``; initial-membrane loads happen before the counter starts)
plus the controller's bookkeeping cycles (:func:`controller_cycles`).

Schedule per timestep (contract sec. 3-6): for each layer and each of its synapses, every event of
the synapse's input that reaches some neuron (each set bit of each pixel, lowest index first, or
each spike) takes ``cycles.event`` and then ``max_p conn_p(e)`` synop cycles in which every PE
accumulates its next reached neuron; then ``max_p n_p`` neuron updates of ``cycles.update`` each;
then ``cycles.layer_overhead``. The output layer integrates in the AT unit (``1 + C`` cycles per
event, ``C`` update cycles) and the exit test takes ``3C + 4``.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from atsnn.errors import RtlError
from atsnn.program import Program
from rtl.at_unit import AtUnit
from rtl.pe import CMD_ACC, CMD_LOAD, CMD_NOP, CMD_UPDATE, ProcessingElement, pe_depth


def check_supported(program: Program) -> None:
    hw = program.hardware
    from atsnn.ilif import first_ilif_layer, is_ilif
    if is_ilif(program):  # only the PE has an iLIF mode (rtl/pe_ilif.py)
        raise RtlError(f"layer '{first_ilif_layer(program)}': iLIF is not in the array top (only the PE, "
                       "rtl/pe_ilif.py, has an iLIF mode)")
    if not program.early_exit:
        raise RtlError(f"program '{program.name}': the array top needs the output layer on the AT unit")
    for l in program.layers:
        for syn in l.synapses:
            if syn.source == "input" and syn.pool is not None:
                raise RtlError(f"layer '{l.name}': a pool directly on the multi-bit input is not in the array top")
            if syn.pool is not None and (tuple(syn.pool.kernel) != tuple(syn.pool.stride) or any(syn.pool.padding)):
                raise RtlError(f"layer '{l.name}': the array top supports non-overlapping pools (kernel = stride, "
                               f"no padding), not {syn.pool}")
        if l.mapping.passes != 1:
            raise RtlError(f"layer '{l.name}': the array top supports one pass per layer")
        if l.mapping.unit == "at" and len(l.synapses) != 1:
            raise RtlError(f"layer '{l.name}': the output layer on the AT unit must have one synapse")
        if l.neuron not in ("if", "lif", "integrator"):
            raise RtlError(f"layer '{l.name}': neuron '{l.neuron}' is not in the array top")
    if hw.cycles.layer_overhead < 2 or hw.cycles.event != 1 or hw.cycles.synop != 1 or hw.cycles.update != 2 \
            or hw.cycles.at_update != 1:
        raise RtlError("the array top implements cycles.event = 1, synop = 1, update = 2, at_update = 1 and "
                       "layer_overhead >= 2")
    total = sum(int(l.mapping.chunk_sizes.max()) for l in program.layers if l.mapping.unit == "pe")
    if total > pe_depth(hw):
        raise RtlError(f"program '{program.name}': {total} neurons per PE exceed the PE memory ({pe_depth(hw)})")


def controller_cycles(program: Program, exit_t: int, use_exit: bool) -> int:
    """Bookkeeping cycles of the controller on top of the contract's schedule (counted by ``cycles``).

    Per timestep: one cycle per synapse to find its event list empty (PE layers and the output
    layer), and with the exit test one cycle to start it and one to read its result; one cycle to
    advance between timesteps. A pipelined controller would hide them; hwsim's schedule does not
    include them.
    """
    phases = sum(len(l.synapses) for l in program.layers)
    return (phases + (2 if use_exit else 0)) * exit_t + (exit_t - 1)


def synapse_matrices(program: Program, layer, syn) -> tuple[np.ndarray, np.ndarray]:
    """``(reach, weight)``, both (source events, layer neurons): whether an event at each source index
    (pixel or source neuron) reaches each neuron, and the weight it adds there (one event of a
    multi-bit pixel adds ``weight << bit``). Built by applying the synapse to one-hot inputs with the
    simulator's own operators, so the connectivity is hwsim's by construction."""
    from hwsim.ops import apply_synapse, synapse_input
    shape = tuple(program.input.shape) if syn.source == "input" else tuple(program.layer(syn.source).shape)
    n_src = int(np.prod(shape))
    one_hot = np.eye(n_src, dtype=np.float32).reshape((n_src,) + shape)
    xi = synapse_input(syn, one_hot)
    weight = apply_synapse(syn, xi, syn.weight.astype(np.float32)).reshape(n_src, -1)
    reach = apply_synapse(syn, xi, np.ones(syn.weight.shape, dtype=np.float32)).reshape(n_src, -1)
    return reach > 0, np.rint(weight).astype(np.int64)


def _tree_sum(terms: list):
    """Sum as a balanced tree (a long chain would be too deep to elaborate for wide layers)."""
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0] if terms else Const(0, 1)


def _priority(m: Module, mask: Signal, width: int):
    """Lowest set bit of ``mask``: (found, index)."""
    idx = Signal(range(max(width, 2)))
    found = Signal()
    for b in reversed(range(width)):
        with m.If(mask[b]):
            m.d.comb += [idx.eq(b), found.eq(1)]
    return found, idx


class ArrayTop(wiring.Component):
    def __init__(self, program: Program):
        check_supported(program)
        self.program = program
        hw = program.hardware
        self.hw = hw
        self.pe_layers = [l for l in program.layers if l.mapping.unit == "pe"]
        self.out = program.output_layer
        self.n_in = int(np.prod(program.input.shape))
        self.in_bits = program.input.bits
        self.C = self.out.neurons
        super().__init__({
            "in_we": In(1), "in_addr": In(range(max(self.n_in, 2))), "in_data": In(self.in_bits),
            "timesteps": In(16), "use_exit": In(1), "cl_init": In(hw.at.cl_frac_bits + 1),
            "tau": In(hw.at.cl_frac_bits + 1), "start": In(1),
            "busy": Out(1), "done": Out(1), "result_class": Out(range(max(self.C, 2))), "exit_t": Out(16),
            "cycles": Out(40), "dbg_state": Out(8),
            **{f"spike_count{k}": Out(32) for k in range(len(self.pe_layers))},
        })

    def elaborate(self, platform):
        m = Module()
        hw, prog = self.hw, self.program
        P = hw.pe_count
        cyc = hw.cycles
        # ---------------------------------------------------------------- PEs and their ROMs
        pes = []
        for p in range(P):
            pe = ProcessingElement(hw)
            m.submodules[f"pe{p}"] = pe
            pes.append(pe)
        # per layer: chunk start/size per PE; per PE local address base per layer
        layer_info = []
        base = 0
        for l in self.pe_layers:
            ch = np.zeros(P, dtype=np.int64)
            used = len(l.mapping.chunk_sizes)
            ch[:used] = l.mapping.chunk_sizes
            starts = np.concatenate([[0], np.cumsum(ch)[:-1]])
            layer_info.append(dict(layer=l, sizes=ch, starts=starts, base=base, nmax=int(ch.max())))
            base += int(ch.max())
        names = [li["layer"].name for li in layer_info]
        # event phases: one per (PE layer, synapse), in layer order; per phase and PE the connection lists
        phases = []
        pair_j = [[] for _ in range(P)]
        pair_w = [[] for _ in range(P)]
        conn_off = [[] for _ in range(P)]
        conn_cnt = [[] for _ in range(P)]
        maxconn_all = []
        tab = 0  # running index into the per-event tables
        for k, li in enumerate(layer_info):
            l = li["layer"]
            for si, syn in enumerate(l.synapses):
                reach, weight = synapse_matrices(prog, l, syn)
                n_ev = reach.shape[0]
                counts = np.zeros((P, n_ev), dtype=np.int64)
                for p in range(P):
                    a, n = int(li["starts"][p]), int(li["sizes"][p])
                    for e in range(n_ev):
                        js = np.nonzero(reach[e, a:a + n])[0]
                        conn_off[p].append(len(pair_j[p]))
                        conn_cnt[p].append(len(js))
                        counts[p, e] = len(js)
                        pair_j[p] += [int(j) for j in js]
                        pair_w[p] += [int(weight[e, a + j]) for j in js]
                mc = counts.max(axis=0)
                maxconn_all += [int(v) for v in mc]
                src = "input" if syn.source == "input" else names.index(syn.source)
                phases.append(dict(k=k, si=si, src=src, tab=tab, n_ev=n_ev, reached=mc > 0,
                                   last=si == len(l.synapses) - 1))
                tab += n_ev
        wbits = hw.numeric.weight_bits
        jbits = max(1, (max(li["nmax"] for li in layer_info) - 1).bit_length())
        max_pairs = max(max(len(pj) for pj in pair_j), 1)
        ports = []
        for p in range(P):
            roms = dict(j=Memory(shape=unsigned(jbits), depth=max(len(pair_j[p]), 1), init=pair_j[p] or [0]),
                        w=Memory(shape=signed(wbits), depth=max(len(pair_w[p]), 1), init=pair_w[p] or [0]),
                        off=Memory(shape=unsigned(max(1, max_pairs.bit_length())), depth=max(tab, 1),
                                   init=conn_off[p] or [0]),
                        cnt=Memory(shape=unsigned(max(1, max(conn_cnt[p] + [1]).bit_length())), depth=max(tab, 1),
                                   init=conn_cnt[p] or [0]))
            rd = {}
            for name, mem in roms.items():
                m.submodules[f"{name}rom{p}"] = mem
                rd[name] = mem.read_port(domain="comb")
            ports.append(rd)
        maxconn_rom = Memory(shape=unsigned(max(1, max(maxconn_all + [1]).bit_length())), depth=max(tab, 1),
                             init=maxconn_all or [0])
        m.submodules.maxconn_rom = maxconn_rom
        maxconn_rd = maxconn_rom.read_port(domain="comb")
        # ---------------------------------------------------------------- input and spike registers
        inmem = Array([Signal(self.in_bits, name=f"in{i}") for i in range(self.n_in)])
        with m.If(self.in_we):
            m.d.sync += inmem[self.in_addr].eq(self.in_data)
        spikes = [Signal(li["layer"].neurons, name=f"spk_{li['layer'].name}") for li in layer_info]

        # ---------------------------------------------------------------- AT unit with its integrator
        m.submodules.at = at = AtUnit(hw)
        C = self.C
        out_syn = self.out.synapses[0]
        out_reach, out_w = synapse_matrices(prog, self.out, out_syn)
        out_src = names.index(out_syn.source)
        out_reached = out_reach.any(axis=1)
        out_rom = Memory(shape=signed(hw.numeric.weight_bits), depth=out_w.size, init=[int(v) for v in out_w.ravel()])
        m.submodules.out_rom = out_rom
        out_rd = out_rom.read_port(domain="comb")
        aw = hw.numeric.accumulator_bits
        uw = hw.at.membrane_bits
        at_acc = Array([Signal(signed(aw), name=f"at_acc{c}") for c in range(C)])
        at_u = Array([Signal(signed(uw), name=f"at_u{c}") for c in range(C)])
        out_bias = Array([Const(int(b), signed(hw.numeric.bias_bits)) for b in self.out.bias])
        exp_mult, d_clip = prog.at.exp_mult, prog.at.d_clip
        m.d.comb += [at.classes.eq(C), at.exp_mult.eq(exp_mult), at.d_clip.eq(d_clip), at.cl_init.eq(self.cl_init),
                     at.tau.eq(self.tau)]

        # ---------------------------------------------------------------- controller
        t = Signal(16)
        li_sig = Signal(range(max(len(layer_info) + 1, 2)))
        ph = Signal(range(max(len(phases), 2)))
        j = Signal(range(max(sum(li["nmax"] for li in layer_info), C) + 2))
        cnt = Signal(16)
        mask_w = max([self.n_in * self.in_bits] + [l.neurons for l in self.pe_layers])
        mask = Signal(mask_w)
        cur = Signal(range(max(mask_w, 2)))
        cycles = Signal(40)
        counting = Signal()
        m.d.comb += self.cycles.eq(cycles)
        with m.If(counting):
            m.d.sync += cycles.eq(cycles + 1)
        found, low = _priority(m, mask, mask_w)
        cap_j = Signal.like(j)
        fsm_capture_first = [Signal(name=f"capture_first{k}") for k in range(len(layer_info))]
        # spike capture: an UPDATE issued in cycle c has its result valid in cycle c + 2, when cap_j
        # holds its slot; each PE writes its own bit of the current layer's spike vector
        for k, li in enumerate(layer_info):
            with m.If(li_sig == k):
                for p, pe in enumerate(pes):
                    if li["sizes"][p] == 0:
                        continue
                    with m.If(pe.valid):
                        m.d.sync += spikes[k].bit_select(int(li["starts"][p]) + cap_j, 1).eq(pe.spike)
        # spikes per layer over the inference: add each layer's spike vector when its updates are done
        for k, li in enumerate(layer_info):
            cnt_port = getattr(self, f"spike_count{k}")
            pop = _tree_sum([spikes[k][b] for b in range(li["layer"].neurons)])
            with m.If(self.start):
                m.d.sync += cnt_port.eq(0)
            with m.Elif(fsm_capture_first[k]):
                m.d.sync += cnt_port.eq(cnt_port + pop)
        for pe in pes:  # defaults
            m.d.comb += pe.cmd.eq(CMD_NOP)

        def layer_consts(pe, li):
            l = li["layer"]
            m.d.comb += [pe.threshold.eq(l.threshold), pe.leak_shift.eq(l.leak_shift),
                         pe.hard_reset.eq(l.reset == "to_value"), pe.v_reset.eq(l.v_reset),
                         pe.strict.eq(l.comparator == ">")]

        from amaranth.hdl import Cat

        def const_bits(flags) -> Const:
            return Const(int("".join("1" if f else "0" for f in reversed(list(flags))) or "0", 2), len(flags))

        def phase_mask(pi: int):
            """Events of phase ``pi``: its source's spikes (or set pixel bits) that reach some neuron."""
            info = phases[pi]
            if info["src"] == "input":
                bits = Cat(*[inmem[i] for i in range(self.n_in)])
                return bits & const_bits(np.repeat(info["reached"], self.in_bits))
            return spikes[info["src"]] & const_bits(info["reached"])

        first_phase = {}
        for pi, info in enumerate(phases):
            first_phase.setdefault(info["k"], pi)
        at_mask = spikes[out_src] & const_bits(out_reached)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [cycles.eq(0), t.eq(0), j.eq(0), self.done.eq(0)]
                    m.next = "INIT"
            with m.State("INIT"):  # LOAD v_init into every PE neuron (before the counter starts)
                m.d.comb += self.busy.eq(1)
                total = sum(li["nmax"] for li in layer_info)
                for p, pe in enumerate(pes):
                    for k, li in enumerate(layer_info):
                        l = li["layer"]
                        per = l.neurons // l.channels
                        in_range = (j < li["base"] + li["nmax"]) if li["base"] == 0 else \
                            ((j >= li["base"]) & (j < li["base"] + li["nmax"]))
                        with m.If(in_range):
                            jj = j - li["base"]
                            vals = []
                            for q in range(li["nmax"]):
                                n = li["starts"][p] + q
                                vals.append(int(l.v_init[min(n, l.neurons - 1) // per]) if q < li["sizes"][p] else 0)
                            m.d.comb += [pe.cmd.eq(CMD_LOAD), pe.addr.eq(j),
                                         pe.w_data.eq(Array([Const(v, signed(hw.numeric.membrane_bits))
                                                             for v in vals])[jj])]
                for c in range(C):
                    m.d.sync += [at_acc[c].eq(0), at_u[c].eq(int(self.out.v_init[c]))]
                with m.If(j == total - 1):
                    m.d.sync += [j.eq(0), li_sig.eq(0), ph.eq(0), counting.eq(1), mask.eq(phase_mask(0))]
                    m.next = "EVENT"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            def event_state(name: str, synop: str, update: str) -> None:
                """Take the lowest pending event (1 cycle) or, when none is left, go to the updates."""
                with m.State(name):
                    m.d.comb += self.busy.eq(1)
                    m.d.sync += j.eq(0)
                    with m.If(found):
                        m.d.sync += [cur.eq(low), mask.eq(mask & ~(1 << low))]
                        m.next = synop
                    with m.Else():
                        m.next = update

            # ---------------- PE layers: the events of each synapse (phase), then the layer's updates
            with m.State("EVENT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += j.eq(0)
                with m.If(found):
                    m.d.sync += [cur.eq(low), mask.eq(mask & ~(1 << low))]
                    m.next = "SYNOP"
                with m.Else():
                    for pi, info in enumerate(phases):
                        with m.If(ph == pi):
                            if info["last"]:
                                m.next = "UPDATE"
                            else:  # the layer's next synapse (one bookkeeping cycle)
                                m.d.sync += [ph.eq(pi + 1), mask.eq(phase_mask(pi + 1))]
            with m.State("SYNOP"):
                m.d.comb += self.busy.eq(1)
                for pi, info in enumerate(phases):
                    with m.If(ph == pi):
                        li = layer_info[info["k"]]
                        if info["src"] == "input":
                            ev, kbit = cur // self.in_bits, cur % self.in_bits
                        else:
                            ev, kbit = cur, 0
                        idx = info["tab"] + ev
                        m.d.comb += maxconn_rd.addr.eq(idx)
                        for p, pe in enumerate(pes):
                            if li["sizes"][p] == 0:
                                continue  # idle in this layer
                            layer_consts(pe, li)
                            rd = ports[p]
                            m.d.comb += [rd["off"].addr.eq(idx), rd["cnt"].addr.eq(idx),
                                         rd["j"].addr.eq(rd["off"].data + j), rd["w"].addr.eq(rd["off"].data + j)]
                            with m.If(j < rd["cnt"].data):
                                m.d.comb += [pe.cmd.eq(CMD_ACC), pe.addr.eq(li["base"] + rd["j"].data),
                                             pe.w.eq(rd["w"].data), pe.k.eq(kbit)]
                with m.If(j + 1 >= maxconn_rd.data):
                    m.next = "EVENT"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.State("UPDATE"):  # 2 cycles per neuron slot: issue, then the PE's second cycle
                m.d.comb += self.busy.eq(1)
                for k, li in enumerate(layer_info):
                    with m.If(li_sig == k):
                        l = li["layer"]
                        per = l.neurons // l.channels
                        for p, pe in enumerate(pes):
                            if li["sizes"][p] == 0:
                                continue  # idle in this layer
                            layer_consts(pe, li)
                            biases = []
                            for q in range(li["nmax"]):
                                n = li["starts"][p] + q
                                biases.append(int(l.bias[min(n, l.neurons - 1) // per]) if q < li["sizes"][p] else 0)
                            with m.If((cnt == 0) & (j < int(li["sizes"][p]))):
                                m.d.comb += [pe.cmd.eq(CMD_UPDATE), pe.addr.eq(li["base"] + j)]
                            m.d.comb += pe.bias.eq(Array([Const(b, signed(hw.numeric.bias_bits)) for b in biases])[j])
                            # the result is valid one cycle after the PE's second cycle: capture it then
                        with m.If(cnt == 0):
                            m.d.sync += cnt.eq(1)
                        with m.Else():
                            m.d.sync += cap_j.eq(j)
                            m.d.sync += cnt.eq(0)
                            with m.If(j == li["nmax"] - 1):
                                m.d.sync += [j.eq(0)]
                                m.next = f"CAPTURE{k}"
                            with m.Else():
                                m.d.sync += j.eq(j + 1)
            for k, li in enumerate(layer_info):
                with m.State(f"CAPTURE{k}"):
                    m.d.comb += self.busy.eq(1)
                    m.d.comb += fsm_capture_first[k].eq(cnt == 1)
                    # overhead cycles of the layer (the first one also captures the last slot's spikes)
                    with m.If(cnt == cyc.layer_overhead - 1):
                        m.d.sync += cnt.eq(0)
                        if k + 1 < len(layer_info):
                            nxt = first_phase[k + 1]
                            m.d.sync += [li_sig.eq(k + 1), ph.eq(nxt), mask.eq(phase_mask(nxt))]
                            m.next = "EVENT"
                        else:
                            m.d.sync += mask.eq(at_mask)
                            m.next = "AT_EVENT"
                    with m.Else():
                        m.d.sync += cnt.eq(cnt + 1)
            # ---------------- output layer in the AT unit
            event_state("AT_EVENT", "AT_SYNOP", "AT_UPDATE")
            with m.State("AT_SYNOP"):
                m.d.comb += self.busy.eq(1)
                m.d.comb += out_rd.addr.eq(cur * C + j)
                m.d.sync += at_acc[j].eq(at_acc[j] + out_rd.data)
                with m.If(j == C - 1):
                    m.next = "AT_EVENT"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.State("AT_UPDATE"):
                m.d.comb += self.busy.eq(1)
                u_old = at_u[j]
                shr = Signal(signed(uw))
                m.d.comb += shr.eq(u_old >> self.out.leak_shift) if self.out.leak_shift else shr.eq(0)
                s = Signal(signed(uw + aw + 2))
                m.d.comb += s.eq(u_old - shr + at_acc[j] + out_bias[j])
                umax, umin = hw.at_membrane_max, hw.at_membrane_min
                u_new = Signal(signed(uw))
                m.d.comb += u_new.eq(Mux(s > umax, umax, Mux(s < umin, umin, s)))
                m.d.sync += [at_u[j].eq(u_new), at_acc[j].eq(0)]
                m.d.comb += [at.u_we.eq(1), at.u_first.eq(j == 0), at.u_addr.eq(j), at.u_data.eq(u_new)]
                with m.If(j == C - 1):
                    m.d.sync += j.eq(0)
                    with m.If(self.use_exit):
                        m.next = "AT_TEST"
                    with m.Elif(t + 1 >= self.timesteps):
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "STEP_END"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.State("AT_TEST"):
                m.d.comb += [self.busy.eq(1), at.start.eq(1), at.first.eq(t == 0)]
                m.next = "AT_WAIT"
            with m.State("AT_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(at.done):
                    with m.If(at.exit | (t + 1 >= self.timesteps)):
                        m.next = "FINISH"
                    with m.Else():
                        m.next = "STEP_END"
            with m.State("STEP_END"):  # advance to the next timestep (the last one goes to FINISH directly)
                m.d.comb += self.busy.eq(1)
                m.d.sync += [t.eq(t + 1), li_sig.eq(0), ph.eq(0), mask.eq(phase_mask(0)), j.eq(0)]
                m.next = "EVENT"
            with m.State("FINISH"):
                m.d.sync += [counting.eq(0), self.done.eq(1), self.exit_t.eq(t + 1), cycles.eq(cycles)]
                # argmax of the integrator, lowest index on ties
                chain_idx, chain_v = Const(0, range(max(C, 2))), at_u[0]
                for c in range(1, C):
                    gt = at_u[c] > chain_v
                    chain_idx = Mux(gt, c, chain_idx)
                    chain_v = Mux(gt, at_u[c], chain_v)
                m.d.sync += self.result_class.eq(chain_idx)
                m.next = "IDLE"
        names = ["IDLE", "INIT", "EVENT", "SYNOP", "UPDATE"] + [f"CAPTURE{k}" for k in range(len(layer_info))] + [
            "AT_EVENT", "AT_SYNOP", "AT_UPDATE", "AT_TEST", "AT_WAIT", "STEP_END", "FINISH"]
        for idx, name in enumerate(names):
            with m.If(fsm.ongoing(name)):
                m.d.comb += self.dbg_state.eq(idx)
        return m
