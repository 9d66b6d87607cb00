"""Array top generated for a compiled Program: PEs, AT unit, event bus, controller and host port.

The array is elaborated for the *shape* of one compiled program: the layer sequence, each layer's
synapses and their sources, the per-PE neuron slices of the mapping, the number of classes and the
depth of every parameter memory are fixed at elaboration (see :class:`ArrayLayout`). Everything
else is *loaded at run time* through the configuration port (``cfg_we``, ``cfg_addr``,
``cfg_data``): the per-PE connection lists, weights, biases, initial membranes, the layers'
thresholds, leak shifts and reset modes, the event masks, the output layer's weights, biases and
initial membranes, and the AT unit's exp-table constants. :func:`load_stream` produces the
``(address, data)`` words of a Program; the address map is :class:`ArrayLayout`'s (docs/rtl.md).

Every synapse (dense, convolution, strided or transposed convolution, a preceding non-overlapping
sum-pool, flatten; several synapses per layer for residual additions) is compiled into per-PE
connection lists: for each input event, the (neuron, weight) pairs of each PE's neurons that the
event reaches. Supported programs: one pass per layer, state resident, output layer on the AT unit
(the digits MLP and CNN); others raise :class:`RtlError` naming the layer.

Host interface (see docs/rtl.md): while ``busy`` is low, write the load stream (one word per cycle
with ``cfg_we``; once per program, not per input); then per input write the pixels (``in_we``,
``in_addr``, ``in_data``), set ``timesteps``, ``cl_init`` and ``tau`` (``use_exit`` = 0 runs all
timesteps), pulse ``start``; when ``done`` rises, ``result_class``, ``exit_t`` and ``cycles`` hold
the predicted class, the exit timestep and the compute cycle count, which equals hwsim's cycles
minus the input-load cycles (the host writes the input before ``start``; initial-membrane loads
happen before the counter starts) plus the controller's bookkeeping cycles
(:func:`controller_cycles`). Parameter loading is a separate phase of ``len(load_stream(p))``
cycles and does not change ``cycles``.

Schedule per timestep (contract sec. 3-6): for each layer and each of its synapses, every event of
the synapse's input that reaches some neuron (each set bit of each pixel, lowest index first, or
each spike) takes ``cycles.event`` and then ``max_p conn_p(e)`` synop cycles in which every PE
accumulates its next reached neuron (one cycle after the SYNOP cycle that reads it: the connection
lists have registered reads, for block RAM); then ``max_p n_p`` neuron updates of ``cycles.update`` each;
then ``cycles.layer_overhead``. The output layer integrates in the AT unit (``1 + C`` cycles per
event, ``C`` update cycles) and the exit test takes ``3C + 4``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from atsnn.errors import RtlError
from atsnn.program import Program
from atsnn.rtl.at_unit import AtUnit
from atsnn.rtl.pe import CMD_ACC, CMD_LOAD, CMD_NOP, CMD_UPDATE, ProcessingElement, pe_depth
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
    from atsnn.hwsim.ops import apply_synapse, synapse_input
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


#: Memories of each PE in the address map (``cfg_addr`` unit field = the PE's index ``p``); each word
#: packs the fields of :meth:`ArrayLayout.pe_words`, first field in the lowest bits.
PE_CONN, PE_PAIR, PE_SLOT = range(3)
#: Memories and registers of the global unit (``cfg_addr`` unit field = ``pe_count``).
G_MAXCONN, G_EVENT_MASK, G_OUT_WEIGHT, G_OUT_BIAS, G_OUT_VINIT, G_LAYER, G_AT = range(7)
#: Per PE layer, the words of its parameter block in ``G_LAYER`` (index ``k * len(LAYER_FIELDS) + field``).
LAYER_FIELDS = ("leak_shift", "hard_reset", "v_reset", "strict", "current_shift")
#: Words of ``G_AT``.
AT_FIELDS = ("exp_mult", "d_clip")


@dataclass
class ArrayLayout:
    """Everything the array top derives from a Program: its elaborated shape and its loaded contents.

    Shape (elaborated): ``layers`` (per PE layer: ``sizes``/``starts`` of each PE's neuron slice,
    ``base`` = first local entry of the layer in every PE, ``nmax`` = largest slice), ``phases`` (per
    (layer, synapse): source, offset ``tab`` of its events in the per-event tables, event count,
    offset of its bits in the event mask), the memory depths and the address-map widths.
    Contents (loaded): per PE the connection lists (``conn_off``/``conn_cnt`` per event, the
    ``pair_j``/``pair_w`` pairs), ``maxconn`` per event, the event masks (``reached``), and the
    output layer's weights (``out_weight``, (source neuron, class)).
    """

    program: Program
    layers: list = field(default_factory=list)
    phases: list = field(default_factory=list)
    pair_j: list = field(default_factory=list)
    pair_w: list = field(default_factory=list)
    conn_off: list = field(default_factory=list)
    conn_cnt: list = field(default_factory=list)
    maxconn: list = field(default_factory=list)
    tab: int = 0
    out_src: int = 0
    out_reached: np.ndarray | None = None
    out_weight: np.ndarray | None = None
    out_mask_off: int = 0
    mask_bits: int = 0

    # ------------------------------------------------------------------ derived shape
    @property
    def hw(self):
        return self.program.hardware

    @property
    def slots(self) -> int:
        """Local neuron entries used in every PE (sum of the layers' largest slices)."""
        return sum(li["nmax"] for li in self.layers)

    @property
    def max_pairs(self) -> int:
        return max(max((len(pj) for pj in self.pair_j), default=0), 1)

    @property
    def classes(self) -> int:
        return self.program.output_layer.neurons

    @property
    def jbits(self) -> int:
        return max(1, (max(li["nmax"] for li in self.layers) - 1).bit_length())

    @property
    def off_bits(self) -> int:
        return max(1, self.max_pairs.bit_length())

    @property
    def cnt_bits(self) -> int:
        return max(1, max([c for cc in self.conn_cnt for c in cc] + [1]).bit_length())

    @property
    def maxconn_bits(self) -> int:
        return max(1, max(self.maxconn + [1]).bit_length())

    @property
    def mask_words(self) -> int:
        return -(-self.mask_bits // self.data_bits)

    def pe_depths(self) -> dict:
        """Depth of each per-PE memory, by kind: one CONN word per event, one PAIR word per
        connection, one SLOT word per local neuron entry."""
        return {PE_CONN: max(self.tab, 1), PE_PAIR: self.max_pairs, PE_SLOT: max(self.slots, 1)}

    def pe_words(self) -> dict:
        """Fields of each per-PE memory word, by kind: ``[(name, shape)]``, first field in the low bits.

        CONN: ``off`` (first pair of the event in the PE's pair list), ``cnt`` (its pairs);
        PAIR: ``neuron`` (local index within the layer's slice), ``weight``; SLOT: ``bias``, ``v_init``,
        ``threshold`` (the neuron's channel threshold, contract sec. 2).
        """
        w = self.field_widths
        return {PE_CONN: [("off", unsigned(w["conn_off"])), ("cnt", unsigned(w["conn_cnt"]))],
                PE_PAIR: [("neuron", unsigned(w["pair_neuron"])), ("weight", signed(w["pair_weight"]))],
                PE_SLOT: [("bias", signed(w["bias"])), ("v_init", signed(w["v_init"])),
                          ("threshold", unsigned(w["threshold"]))]}

    def global_depths(self) -> dict:
        """Depth of each memory or register file of the global unit, by kind."""
        C = self.classes
        return {G_MAXCONN: max(self.tab, 1), G_EVENT_MASK: self.mask_words, G_OUT_WEIGHT: self.out_weight.size,
                G_OUT_BIAS: C, G_OUT_VINIT: C, G_LAYER: len(self.layers) * len(LAYER_FIELDS), G_AT: len(AT_FIELDS)}

    @cached_property
    def field_widths(self) -> dict:
        """Width in bits of every loaded word (taken from the PE's and AT unit's ports)."""
        hw = self.hw
        pe, at = ProcessingElement(hw), AtUnit(hw)
        pe._MustUse__silence = at._MustUse__silence = True  # made only to read their port widths
        widths = {"conn_off": self.off_bits, "conn_cnt": self.cnt_bits, "pair_neuron": self.jbits,
                  "pair_weight": len(pe.w), "bias": len(pe.bias), "v_init": len(pe.w_data),
                  "maxconn": self.maxconn_bits, "out_weight": hw.numeric.weight_bits, "out_bias": hw.numeric.bias_bits,
                  "out_v_init": hw.at.membrane_bits, "threshold": len(pe.threshold), "leak_shift": len(pe.leak_shift),
                  "hard_reset": len(pe.hard_reset), "v_reset": len(pe.v_reset), "strict": len(pe.strict),
                  "current_shift": len(pe.current_shift),
                  "exp_mult": len(at.exp_mult), "d_clip": len(at.d_clip)}
        return widths

    @cached_property
    def data_bits(self) -> int:
        """Width of ``cfg_data``: the widest loaded word (a packed PE word or a single field); event-mask
        words carry this many mask bits."""
        return max(list(self.field_widths.values())
                   + [sum(sh.width for _, sh in fields) for fields in self.pe_words().values()])

    @cached_property
    def index_bits(self) -> int:
        depth = max(list(self.pe_depths().values()) + list(self.global_depths().values()))
        return max(1, (depth - 1).bit_length())

    kind_bits = 3

    @property
    def unit_bits(self) -> int:
        return max(1, self.hw.pe_count.bit_length())

    @property
    def addr_bits(self) -> int:
        return self.unit_bits + self.kind_bits + self.index_bits

    def address(self, unit: int, kind: int, index: int) -> int:
        """``cfg_addr`` of word ``index`` of memory ``kind`` in ``unit`` (PE index, or ``pe_count`` = global)."""
        assert 0 <= unit <= self.hw.pe_count and 0 <= kind < (1 << self.kind_bits) and 0 <= index < (1 << self.index_bits)
        return (unit << (self.kind_bits + self.index_bits)) | (kind << self.index_bits) | index


def array_layout(program: Program) -> ArrayLayout:
    """The array top's shape and parameter contents for ``program`` (checked by :func:`check_supported`)."""
    check_supported(program)
    hw = program.hardware
    P = hw.pe_count
    L = ArrayLayout(program=program)
    pe_layers = [l for l in program.layers if l.mapping.unit == "pe"]
    base = 0
    for l in pe_layers:
        ch = np.zeros(P, dtype=np.int64)
        ch[:len(l.mapping.chunk_sizes)] = l.mapping.chunk_sizes
        starts = np.concatenate([[0], np.cumsum(ch)[:-1]])
        L.layers.append(dict(layer=l, sizes=ch, starts=starts, base=base, nmax=int(ch.max())))
        base += int(ch.max())
    names = [li["layer"].name for li in L.layers]
    L.pair_j, L.pair_w = [[] for _ in range(P)], [[] for _ in range(P)]
    L.conn_off, L.conn_cnt = [[] for _ in range(P)], [[] for _ in range(P)]
    mask_off = 0
    for k, li in enumerate(L.layers):
        l = li["layer"]
        for si, syn in enumerate(l.synapses):
            reach, weight = synapse_matrices(program, l, syn)
            n_ev = reach.shape[0]
            counts = np.zeros((P, n_ev), dtype=np.int64)
            for p in range(P):
                a, n = int(li["starts"][p]), int(li["sizes"][p])
                for e in range(n_ev):
                    js = np.nonzero(reach[e, a:a + n])[0]
                    L.conn_off[p].append(len(L.pair_j[p]))
                    L.conn_cnt[p].append(len(js))
                    counts[p, e] = len(js)
                    L.pair_j[p] += [int(j) for j in js]
                    L.pair_w[p] += [int(weight[e, a + j]) for j in js]
            mc = counts.max(axis=0)
            L.maxconn += [int(v) for v in mc]
            src = "input" if syn.source == "input" else names.index(syn.source)
            L.phases.append(dict(k=k, si=si, src=src, tab=L.tab, n_ev=n_ev, reached=mc > 0, mask_off=mask_off,
                                 last=si == len(l.synapses) - 1))
            L.tab += n_ev
            mask_off += n_ev
    out = program.output_layer
    out_reach, L.out_weight = synapse_matrices(program, out, out.synapses[0])
    L.out_src = names.index(out.synapses[0].source)
    L.out_reached = out_reach.any(axis=1)
    L.out_mask_off = mask_off
    L.mask_bits = mask_off + len(L.out_reached)
    return L


def load_stream(program: Program, layout: ArrayLayout | None = None) -> list[tuple[int, int]]:
    """The ``(cfg_addr, cfg_data)`` words that load ``program``'s parameters into its array top.

    Write them in any order, one per cycle with ``cfg_we`` high, while the array is idle; once per
    program (the parameters persist across inputs and are not cleared by ``rst``). ``cfg_data`` is
    the word's two's complement in ``data_bits`` bits. Only words the controller reads are listed:
    connection-list entries of events in layers where the PE holds neurons, the used neuron slots
    of each PE; every other word is never read and may hold anything. Loading takes one cycle per
    word (``len(load_stream(program))`` cycles) and does not change the inference's ``cycles``.
    """
    L = layout or array_layout(program)
    hw = program.hardware
    P, D = hw.pe_count, L.data_bits
    mask = (1 << D) - 1
    words: list[tuple[int, int]] = []

    def put(unit, kind, index, value):
        words.append((L.address(unit, kind, index), int(value) & mask))

    pe_words = L.pe_words()

    def put_pe(p, kind, index, **values):
        word, pos = 0, 0
        for name, shape in pe_words[kind]:
            word |= (int(values[name]) & ((1 << shape.width) - 1)) << pos
            pos += shape.width
        put(p, kind, index, word)

    for p in range(P):
        for ph in L.phases:
            if L.layers[ph["k"]]["sizes"][p] == 0:
                continue  # the PE sits this layer out: its entries are never read
            for e in range(ph["tab"], ph["tab"] + ph["n_ev"]):
                put_pe(p, PE_CONN, e, off=L.conn_off[p][e], cnt=L.conn_cnt[p][e])
        for i, (jj, w) in enumerate(zip(L.pair_j[p], L.pair_w[p])):
            put_pe(p, PE_PAIR, i, neuron=jj, weight=w)
        for li in L.layers:
            l = li["layer"]
            per = l.neurons // l.channels
            thr = l.channel_thresholds()
            for q in range(int(li["sizes"][p])):
                ch = (int(li["starts"][p]) + q) // per
                put_pe(p, PE_SLOT, li["base"] + q, bias=l.bias[ch], v_init=l.v_init[ch], threshold=thr[ch])
    g = P
    for e, v in enumerate(L.maxconn):
        put(g, G_MAXCONN, e, v)
    bits = np.zeros(L.mask_words * D, dtype=bool)
    for ph in L.phases:
        bits[ph["mask_off"]:ph["mask_off"] + ph["n_ev"]] = ph["reached"]
    bits[L.out_mask_off:L.out_mask_off + len(L.out_reached)] = L.out_reached
    for wi in range(L.mask_words):
        put(g, G_EVENT_MASK, wi, sum(1 << b for b in range(D) if bits[wi * D + b]))
    for i, v in enumerate(L.out_weight.ravel()):
        put(g, G_OUT_WEIGHT, i, v)
    out = program.output_layer
    for c in range(L.classes):
        put(g, G_OUT_BIAS, c, out.bias[c])
        put(g, G_OUT_VINIT, c, out.v_init[c])
    for k, li in enumerate(L.layers):
        l = li["layer"]
        vals = dict(leak_shift=l.leak_shift, hard_reset=l.reset == "to_value", v_reset=l.v_reset,
                    strict=l.comparator == ">", current_shift=l.current_shift)
        for f, name in enumerate(LAYER_FIELDS):
            put(g, G_LAYER, k * len(LAYER_FIELDS) + f, vals[name])
    for f, name in enumerate(AT_FIELDS):
        put(g, G_AT, f, getattr(program.at, name))
    return words


def write_load_stream(program: Program, path, layout: ArrayLayout | None = None) -> int:
    """Write :func:`load_stream` as text, one ``ADDR DATA`` word per line in hex (``//`` comment header).

    Returns the number of words (= load cycles). The header states ``addr_bits`` and ``data_bits``.
    """
    from pathlib import Path
    L = layout or array_layout(program)
    words = load_stream(program, L)
    na, nd = -(-L.addr_bits // 4), -(-L.data_bits // 4)
    lines = [f"// atsnn_array load stream for program '{program.name}': {len(words)} words, "
             f"addr_bits {L.addr_bits}, data_bits {L.data_bits}; one word per cycle with cfg_we = 1"]
    lines += [f"{a:0{na}x} {d:0{nd}x}" for a, d in words]
    Path(path).write_text("\n".join(lines) + "\n")
    return len(words)


class ArrayTop(wiring.Component):
    """The array top for ``program``'s shape; its parameters come through the ``cfg_*`` port (:func:`load_stream`)."""

    def __init__(self, program: Program, layout: ArrayLayout | None = None):
        self.layout = L = layout or array_layout(program)
        self.program = program
        hw = program.hardware
        self.hw = hw
        self.pe_layers = [li["layer"] for li in L.layers]
        self.out = program.output_layer
        self.n_in = int(np.prod(program.input.shape))
        self.in_bits = program.input.bits
        self.C = self.out.neurons
        super().__init__({
            "cfg_we": In(1), "cfg_addr": In(L.addr_bits), "cfg_data": In(L.data_bits),
            "in_we": In(1), "in_addr": In(range(max(self.n_in, 2))), "in_data": In(self.in_bits),
            "timesteps": In(16), "use_exit": In(1), "cl_init": In(hw.at.cl_frac_bits + 1),
            "tau": In(hw.at.cl_frac_bits + 1), "start": In(1),
            "busy": Out(1), "done": Out(1), "result_class": Out(range(max(self.C, 2))), "exit_t": Out(16),
            "cycles": Out(40), "dbg_state": Out(8),
            **{f"spike_count{k}": Out(32) for k in range(len(self.pe_layers))},
        })

    def elaborate(self, platform):
        m = Module()
        hw, L = self.hw, self.layout
        P = hw.pe_count
        cyc = hw.cycles
        layer_info, phases = L.layers, L.phases
        names = [li["layer"].name for li in layer_info]
        C = self.C
        # ---------------------------------------------------------------- configuration port
        ib, kb = L.index_bits, L.kind_bits
        cfg_idx = self.cfg_addr[:ib]
        cfg_kind = self.cfg_addr[ib:ib + kb]
        cfg_unit = self.cfg_addr[ib + kb:]

        kind_hits = {}

        def kind_hit(kind, depth):
            """``cfg_kind == kind`` and an index within ``depth``: decoded once, shared by every unit."""
            if (kind, depth) not in kind_hits:
                hit = Signal(name=f"cfg_hit{kind}_{depth}")
                m.d.comb += hit.eq((cfg_kind == kind) & (cfg_idx < depth))
                kind_hits[kind, depth] = hit
            return kind_hits[kind, depth]

        def loaded_memory(name, shape, depth, sel, kind):
            """A parameter memory written through the configuration port, read combinationally."""
            mem = Memory(shape=shape, depth=depth, init=[])
            m.submodules[name] = mem
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(cfg_idx), Value.cast(wp.data).eq(self.cfg_data),
                         wp.en.eq(sel & kind_hit(kind, depth))]
            return mem.read_port(domain="comb")

        def loaded_register(shape, name, sel, kind, index):
            """A parameter register written through the configuration port (kept over ``rst``)."""
            reg = Signal(shape, name=name, reset_less=True)
            with m.If(sel & (cfg_kind == kind) & (cfg_idx == index)):
                m.d.sync += reg.eq(self.cfg_data)
            return reg

        gsel = Signal()
        m.d.comb += gsel.eq(self.cfg_we & (cfg_unit == P))
        # ---------------------------------------------------------------- per-PE connection lists
        # Each PE's CONN words (one per event) and PAIR words (one per connection) share one memory with
        # registered reads (block RAM): CONN at [0, tab), PAIR at [tab, tab + max_pairs). Port A reads the
        # CONN word of the event being taken (its address is presented in the EVENT cycle, held during
        # SYNOP) and shares its address with the configuration write; port B reads PAIR word off + j,
        # presented in SYNOP cycle j, so the PE accumulates it one cycle later (the per-event and
        # per-phase cycle counts do not change: the last accumulation of an event falls in the next
        # EVENT cycle, when the PE is otherwise idle).
        depths, words = L.pe_depths(), L.pe_words()
        tab = max(L.tab, 1)
        list_width = max(sum(sh.width for _, sh in words[k]) for k in (PE_CONN, PE_PAIR))
        list_depth = tab + depths[PE_PAIR]
        conn_hit, pair_hit = kind_hit(PE_CONN, depths[PE_CONN]), kind_hit(PE_PAIR, depths[PE_PAIR])
        list_waddr = Signal(range(list_depth), name="list_waddr")
        m.d.comb += list_waddr.eq(Mux(cfg_kind == PE_PAIR, tab + cfg_idx, cfg_idx))
        conn_idx = Signal(range(tab), name="conn_idx")  # CONN word of the event taken or being worked on
        list_a = Signal(range(list_depth), name="list_a")  # port A: the write address while loading
        m.d.comb += list_a.eq(Mux(self.cfg_we, list_waddr, conn_idx))
        j = Signal(range(max(L.slots, C) + 2))  # the controller's slot / synop / class counter

        def list_memory(p, sel):
            """PE ``p``'s CONN and PAIR words: ``(conn, pair)`` views of the two registered read ports."""
            mem = Memory(shape=list_width, depth=list_depth, init=[])
            m.submodules[f"listmem{p}"] = mem
            wp = mem.write_port()
            ra, rb = mem.read_port(domain="sync"), mem.read_port(domain="sync")
            conn = data.View(data.StructLayout(dict(words[PE_CONN])), ra.data[:sum(sh.width for _, sh in words[PE_CONN])])
            pair = data.View(data.StructLayout(dict(words[PE_PAIR])), rb.data[:sum(sh.width for _, sh in words[PE_PAIR])])
            m.d.comb += [wp.addr.eq(list_a), ra.addr.eq(list_a), wp.data.eq(self.cfg_data[:list_width]),
                         wp.en.eq(sel & (conn_hit | pair_hit)), rb.addr.eq(tab + conn.off + j)]
            return conn, pair
        # ---------------------------------------------------------------- PEs and their parameter memories
        pes, ports = [], []
        for p in range(P):
            pe = ProcessingElement(hw)
            m.submodules[f"pe{p}"] = pe
            pes.append(pe)
            sel = Signal(name=f"cfg_sel{p}")
            m.d.comb += sel.eq(self.cfg_we & (cfg_unit == p))
            conn, pair = list_memory(p, sel)
            ports.append(dict(conn=conn, pair=pair,
                              slot=loaded_memory(f"slotmem{p}", data.StructLayout(dict(words[PE_SLOT])),
                                                 depths[PE_SLOT], sel, PE_SLOT)))
        gdepths = L.global_depths()
        maxconn_rd = loaded_memory("maxconn_mem", unsigned(L.maxconn_bits), gdepths[G_MAXCONN], gsel, G_MAXCONN)
        out_rd = loaded_memory("out_weight_mem", signed(hw.numeric.weight_bits), gdepths[G_OUT_WEIGHT], gsel,
                               G_OUT_WEIGHT)
        D = L.data_bits
        mask_words = [loaded_register(D, f"event_mask{w}", gsel, G_EVENT_MASK, w) for w in range(L.mask_words)]
        mask_flat = Cat(*mask_words)
        nf = len(LAYER_FIELDS)
        pe0 = pes[0]
        layer_regs = [{name: loaded_register(getattr(pe0, name).shape(), f"{name}_{names[k]}", gsel, G_LAYER,
                                             k * nf + f) for f, name in enumerate(LAYER_FIELDS)}
                      for k in range(len(layer_info))]
        # ---------------------------------------------------------------- input and spike registers
        inmem = Array([Signal(self.in_bits, name=f"in{i}") for i in range(self.n_in)])
        with m.If(self.in_we):
            m.d.sync += inmem[self.in_addr].eq(self.in_data)
        spikes = [Signal(li["layer"].neurons, name=f"spk_{li['layer'].name}") for li in layer_info]

        # ---------------------------------------------------------------- AT unit with its integrator
        m.submodules.at = at = AtUnit(hw)
        aw = hw.numeric.accumulator_bits
        uw = hw.at.membrane_bits
        at_acc = Array([Signal(signed(aw), name=f"at_acc{c}") for c in range(C)])
        at_u = Array([Signal(signed(uw), name=f"at_u{c}") for c in range(C)])
        out_bias = Array([loaded_register(signed(hw.numeric.bias_bits), f"out_bias{c}", gsel, G_OUT_BIAS, c)
                          for c in range(C)])
        out_vinit = [loaded_register(signed(uw), f"out_vinit{c}", gsel, G_OUT_VINIT, c) for c in range(C)]
        at_regs = {name: loaded_register(getattr(at, name).shape(), name, gsel, G_AT, f)
                   for f, name in enumerate(AT_FIELDS)}
        m.d.comb += [at.classes.eq(C), at.exp_mult.eq(at_regs["exp_mult"]), at.d_clip.eq(at_regs["d_clip"]),
                     at.cl_init.eq(self.cl_init), at.tau.eq(self.tau)]

        # ---------------------------------------------------------------- controller
        t = Signal(16)
        li_sig = Signal(range(max(len(layer_info) + 1, 2)))
        ph = Signal(range(max(len(phases), 2)))
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
                        with m.Switch(cap_j):  # only the PE's own slots (a full bit_select would mux every bit)
                            for q in range(int(li["sizes"][p])):
                                with m.Case(q):
                                    m.d.sync += spikes[k][int(li["starts"][p]) + q].eq(pe.spike)
        # spikes per layer over the inference: add each layer's spike vector when its updates are done
        for k, li in enumerate(layer_info):
            cnt_port = getattr(self, f"spike_count{k}")
            pop = _tree_sum([spikes[k][b] for b in range(li["layer"].neurons)])
            with m.If(self.start):
                m.d.sync += cnt_port.eq(0)
            with m.Elif(fsm_capture_first[k]):
                m.d.sync += cnt_port.eq(cnt_port + pop)
        # PE inputs are computed once and shared by every PE (per-PE logic is only the PE's own memory
        # reads and its command, gated by its slice size in the current layer): the FSM states set
        # the st_* flags and the current event's table row, layer, bit and slot address
        st_init, st_synop, st_update = Signal(), Signal(), Signal()
        g_idx = Signal.like(maxconn_rd.addr, name="ev_idx")  # current event's row in the per-event tables
        g_kbit = Signal.like(pe0.k, name="ev_kbit")  # bit of the pixel (input events)
        g_k = Signal.like(li_sig, name="cur_layer")
        g_base = Signal(range(max(L.slots, 2)), name="cur_base")  # first local entry of the current layer
        g_slot = Signal(max(len(j), g_base.shape().width) + 1, name="cur_slot")  # INIT: j; UPDATE: base + j
        m.d.comb += g_k.eq(li_sig)
        with m.Switch(g_k):
            for k, li in enumerate(layer_info):
                with m.Case(k):
                    m.d.comb += g_base.eq(li["base"])
        m.d.comb += g_slot.eq(Mux(st_init, j, g_base + j))
        g_par = {name: Signal.like(reg, name=f"cur_{name}") for name, reg in layer_regs[0].items()}
        with m.Switch(g_k):
            for k in range(len(layer_info)):
                with m.Case(k):
                    m.d.comb += [g_par[name].eq(reg) for name, reg in layer_regs[k].items()]
        # per distinct pattern of slice sizes over the layers, the current layer's size
        patterns = sorted({tuple(int(li["sizes"][p]) for li in layer_info) for p in range(P)})
        limits = {}
        for pat in patterns:
            lim = Signal(range(max(pat) + 1), name="slice_" + "_".join(map(str, pat)))
            with m.Switch(g_k):
                for k, n in enumerate(pat):
                    with m.Case(k):
                        m.d.comb += lim.eq(n)
            limits[pat] = lim
        m.d.comb += maxconn_rd.addr.eq(g_idx)
        m.d.comb += conn_idx.eq(g_idx)
        # SYNOP cycle j reads pair j; the PE accumulates it in the next cycle, with the bit and layer base
        # of that SYNOP cycle
        d_kbit, d_base = Signal.like(g_kbit, name="acc_kbit"), Signal.like(g_base, name="acc_base")
        m.d.sync += [d_kbit.eq(g_kbit), d_base.eq(g_base)]
        for p, pe in enumerate(pes):
            conn, pair, slot = ports[p]["conn"], ports[p]["pair"], ports[p]["slot"]
            lim = limits[tuple(int(li["sizes"][p]) for li in layer_info)]
            d_go = Signal(name=f"acc_go{p}")  # this PE accumulates the pair read in the previous cycle
            m.d.sync += d_go.eq(st_synop & (lim != 0) & (j < conn.cnt))
            m.d.comb += [slot.addr.eq(g_slot), pe.addr.eq(Mux(d_go, d_base + pair.neuron, g_slot)),
                         pe.w.eq(pair.weight), pe.k.eq(d_kbit), pe.w_data.eq(slot.data.v_init),
                         pe.bias.eq(slot.data.bias), pe.threshold.eq(slot.data.threshold)]
            m.d.comb += [getattr(pe, name).eq(sig) for name, sig in g_par.items()]
            with m.If(st_init):
                m.d.comb += pe.cmd.eq(CMD_LOAD)
            with m.Elif(d_go):
                m.d.comb += pe.cmd.eq(CMD_ACC)
            with m.Elif(st_update & (cnt == 0) & (j < lim)):
                m.d.comb += pe.cmd.eq(CMD_UPDATE)
            with m.Else():
                m.d.comb += pe.cmd.eq(CMD_NOP)

        def phase_mask(pi: int):
            """Events of phase ``pi``: its source's spikes (or set pixel bits) that reach some neuron."""
            info = phases[pi]
            reached = mask_flat[info["mask_off"]:info["mask_off"] + info["n_ev"]]
            if info["src"] == "input":
                bits = Cat(*[inmem[i] for i in range(self.n_in)])
                return bits & Cat(*[reached[i].replicate(self.in_bits) for i in range(self.n_in)])
            return spikes[info["src"]] & reached

        first_phase = {}
        for pi, info in enumerate(phases):
            first_phase.setdefault(info["k"], pi)
        at_mask = spikes[L.out_src] & mask_flat[L.out_mask_off:L.out_mask_off + len(L.out_reached)]
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [cycles.eq(0), t.eq(0), j.eq(0), self.done.eq(0)]
                    m.next = "INIT"
            with m.State("INIT"):  # LOAD v_init into every PE neuron entry (before the counter starts)
                m.d.comb += [self.busy.eq(1), st_init.eq(1)]
                total = L.slots
                for c in range(C):
                    m.d.sync += [at_acc[c].eq(0), at_u[c].eq(out_vinit[c])]
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
                for pi, info in enumerate(phases):  # present the CONN address of the event taken now
                    with m.If(ph == pi):
                        ev = low // self.in_bits if info["src"] == "input" else low
                        m.d.comb += g_idx.eq(info["tab"] + ev)
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
            with m.State("SYNOP"):  # each PE holding neurons of the layer accumulates its next reached neuron
                m.d.comb += [self.busy.eq(1), st_synop.eq(1)]
                for pi, info in enumerate(phases):
                    with m.If(ph == pi):
                        if info["src"] == "input":
                            ev, kbit = cur // self.in_bits, cur % self.in_bits
                        else:
                            ev, kbit = cur, 0
                        m.d.comb += [g_idx.eq(info["tab"] + ev), g_kbit.eq(kbit), g_k.eq(info["k"])]
                with m.If(j + 1 >= maxconn_rd.data):
                    m.next = "EVENT"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.State("UPDATE"):  # 2 cycles per neuron slot: issue, then the PE's second cycle
                m.d.comb += [self.busy.eq(1), st_update.eq(1)]
                for k, li in enumerate(layer_info):
                    with m.If(li_sig == k):
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
