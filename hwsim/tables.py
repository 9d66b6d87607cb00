"""Per-layer connectivity tables for the lockstep cycle model (contract sec. 6).

For every layer, pass and synapse: ``conn[p, pos]`` = how many of PE ``p``'s
neurons in that pass an event at input position ``pos`` reaches. For dense
synapses every input reaches every neuron of the pass, so one column
suffices; for convolutions the count does not depend on the input channel,
so positions are spatial ``(H*W)`` of the synapse input. From ``conn`` come
``maxconn`` (the lockstep cost of an event), ``reached`` (PEs that take the
event into their buffer) and ``fanout`` (synops per event).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from atsnn.errors import SimulationInputError
from atsnn.program import Layer, Program

#: exact mode refuses layers whose tables would exceed this many entries
MAX_TABLE_ENTRIES = 60_000_000


@dataclass
class SynapseTable:
    positional: bool  # conv-like (per spatial position) or dense (uniform)
    conn: list[np.ndarray]  # per pass: (P, positions) int64
    maxconn: list[np.ndarray]  # per pass: (positions,)
    reached: list[np.ndarray]  # per pass: (positions,) PEs with conn > 0
    fanout: np.ndarray  # (positions,) total neurons reached over all passes

    def accounting_matrix(self, event_cycles: int, synop_cycles: int) -> tuple[np.ndarray, np.ndarray]:
        """Per input position, the counts of one event, summed over passes: ``(counts, busy)``, float64
        ``(positions, 3)`` columns [synops, lockstep cycles, PE deliveries] and ``(positions, P)`` busy
        cycles of each PE. ``events @ counts`` gives a timestep's per-sample counts and
        ``events.sum(0) @ busy`` the batch's PE busy cycles in two small products (the engine's hot path)."""
        key = (event_cycles, synop_cycles)
        if getattr(self, "_acc_key", None) != key:
            P = self.conn[0].shape[0]
            counts = np.zeros((self.fanout.shape[0], 3))
            busy = np.zeros((self.fanout.shape[0], P))
            counts[:, 0] = self.fanout
            for c, mx, r in zip(self.conn, self.maxconn, self.reached):
                counts[:, 1] += event_cycles * (mx > 0) + synop_cycles * mx
                counts[:, 2] += r
                busy += (event_cycles * (c > 0) + synop_cycles * c).T
            self._acc_key, self._acc = key, (counts, busy)
        return self._acc


@dataclass
class LayerTable:
    unit: str
    pass_sizes: list[np.ndarray]  # per pass: (P,) neurons of each PE in the pass
    synapses: list[SynapseTable]


def pass_ranges(layer: Layer) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per pass, (start, stop) flat neuron indices of each PE's slice."""
    m = layer.mapping
    chunks = np.asarray(m.chunk_sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(chunks)[:-1]])
    out = []
    base = chunks // m.passes
    extra = chunks % m.passes
    offs = starts.copy()
    for j in range(m.passes):
        size = base + (j < extra)
        out.append((offs.copy(), offs + size))
        offs = offs + size
    return out


def _counts_per_spatial(a: np.ndarray, b: np.ndarray, cout: int, hw_out: int) -> np.ndarray:
    """cnt[p, q] = #channels co with a_p <= co*hw_out + q < b_p."""
    q = np.arange(hw_out, dtype=np.int64)[None, :]
    lo = -((q - a[:, None]) // hw_out)  # ceil((a - q) / hw)
    hi = (b[:, None] - 1 - q) // hw_out
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, cout - 1)
    return np.maximum(hi - lo + 1, 0)


def _tap_pairs(n_in: int, n_out: int, stride: int, pad: int, tap: int, transposed: bool):
    """(input index, output index) pairs linked by kernel tap ``tap`` along one axis.

    conv2d: output o reads input ``o*stride - pad + tap``; transposed: input i
    writes output ``i*stride - pad + tap``. Each pair appears once per tap.
    """
    if transposed:
        i = np.arange(n_in)
        o = i * stride - pad + tap
        ok = (o >= 0) & (o < n_out)
        return i[ok], o[ok]
    o = np.arange(n_out)
    i = o * stride - pad + tap
    ok = (i >= 0) & (i < n_in)
    return i[ok], o[ok]


def _conv_conn(syn, layer: Layer, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cout, ho, wo = layer.shape
    _, hi, wi = syn.input_shape
    cnt = _counts_per_spatial(a, b, cout, ho * wo).reshape(len(a), ho, wo)
    conn = np.zeros((len(a), hi, wi), dtype=np.int64)
    sh, sw = syn.stride
    ph, pw = syn.padding
    kh, kw = syn.weight.shape[2], syn.weight.shape[3]
    transposed = syn.op == "conv_transpose2d"
    for ky in range(kh):
        iy, oy = _tap_pairs(hi, ho, sh, ph, ky, transposed)
        for kx in range(kw):
            ix, ox = _tap_pairs(wi, wo, sw, pw, kx, transposed)
            conn[:, iy[:, None], ix[None, :]] += cnt[:, oy[:, None], ox[None, :]]
    return conn.reshape(len(a), hi * wi)


def build_layer_table(layer: Layer) -> LayerTable:
    m = layer.mapping
    ranges = pass_ranges(layer)
    sizes = [b - a for a, b in ranges]
    syn_tables = []
    for syn in layer.synapses:
        positional = syn.op != "dense"
        if positional:
            entries = m.passes * len(ranges[0][0]) * syn.input_shape[1] * syn.input_shape[2]
            if entries > MAX_TABLE_ENTRIES:
                raise SimulationInputError(f"layer '{layer.name}' is too large for the exact simulator "
                                           f"({entries} table entries); use the analytic mode")
        conns, maxc, reached = [], [], []
        fan = None
        for (a, b) in ranges:
            if positional:
                c = _conv_conn(syn, layer, a, b)
            else:
                c = (b - a).reshape(-1, 1).astype(np.int64)
            conns.append(c)
            maxc.append(c.max(axis=0))
            reached.append((c > 0).sum(axis=0))
            fan = c.sum(axis=0) if fan is None else fan + c.sum(axis=0)
        syn_tables.append(SynapseTable(positional=positional, conn=conns, maxconn=maxc, reached=reached, fanout=fan))
    return LayerTable(unit=m.unit, pass_sizes=sizes, synapses=syn_tables)


#: layer tables kept between ``simulate`` calls, by :func:`table_key` (least recently used dropped first)
#: up to this many bytes (the connection counts, counted twice for the accounting matrices made from them)
_TABLE_CACHE: OrderedDict = OrderedDict()
TABLE_CACHE_MAX_BYTES = 256 << 20


def _table_bytes(table: LayerTable) -> int:
    return 2 * sum(c.nbytes for st in table.synapses for c in st.conn)


def table_key(layer: Layer) -> tuple:
    """Everything :func:`build_layer_table` reads: the layer's shape, its mapping's unit, passes and chunk
    sizes, and per synapse the op, input shape, stride, padding and kernel shape (not the weight values)."""
    m = layer.mapping
    syns = tuple((s.op, tuple(s.input_shape), tuple(s.stride), tuple(s.padding), tuple(s.weight.shape))
                 for s in layer.synapses)
    return (tuple(layer.shape), m.unit, int(m.passes), np.asarray(m.chunk_sizes, dtype=np.int64).tobytes(), syns)


def build_tables(program: Program) -> dict[str, LayerTable]:
    """The tables of every layer, by name. Tables of a layer structure seen before (same :func:`table_key`,
    e.g. the same program simulated again for another T, policy or input set) are reused, with their
    accounting matrices; callers must not modify them."""
    out = {}
    for l in program.layers:
        key = table_key(l)
        table = _TABLE_CACHE.get(key)
        if table is None:
            table = build_layer_table(l)
            _TABLE_CACHE[key] = table
            while sum(_table_bytes(t) for t in _TABLE_CACHE.values()) > TABLE_CACHE_MAX_BYTES:
                _TABLE_CACHE.popitem(last=False)  # a table larger than the whole cache is not kept either
        else:
            _TABLE_CACHE.move_to_end(key)
        out[l.name] = table
    return out


def event_positions(syn, x: np.ndarray, *, pixels: bool) -> np.ndarray:
    """Events per position (B, positions) of a synapse input x (B, *input_shape).

    Pixels produce popcount(x) events (bit-serial), counts produce x events.
    Dense inputs collapse to one column (their connectivity is uniform).
    """
    ev = _popcount(x) if pixels else x
    if syn.op == "dense":
        return ev.reshape(ev.shape[0], -1).sum(axis=1, keepdims=True)
    return ev.sum(axis=1).reshape(ev.shape[0], -1)


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    c = np.zeros_like(x)
    while np.any(x):
        c += x & 1
        x = x >> 1
    return c


# --------------------------------------------------------------------------- table-free statistics (analytic mode)
#: positions per synapse above which :func:`synapse_stats` samples evenly spaced positions
STATS_MAX_POSITIONS = 2048
_STATS_BATCH = 64


@dataclass
class SynapseStats:
    """Means over input positions of the lockstep quantities (what the analytic mode needs).

    Equal to the means of the :class:`SynapseTable` arrays when every position is used
    (``sampled = False``); otherwise estimated on ``positions_used`` evenly spaced positions.
    """

    fanout: float  # synops per event
    maxconn: list[float]  # per pass: mean lockstep synops of an event
    maxconn_any: list[float]  # per pass: fraction of positions whose event reaches some PE
    reached: list[float]  # per pass: mean PEs that take the event
    sampled: bool
    positions_used: int


def _pass_slices(layer: Layer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(starts, chunks, base, extra) of the PE chunks; pass j of PE p holds base+1 neurons when j < extra."""
    chunks = np.asarray(layer.mapping.chunk_sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(chunks)[:-1]])
    return starts, chunks, chunks // layer.mapping.passes, chunks % layer.mapping.passes


def pass_max_sizes(layer: Layer) -> list[int]:
    """Largest PE slice of each pass (the update phase of a pass takes this many neuron updates)."""
    _, _, base, extra = _pass_slices(layer)
    return [int((base + (j < extra)).max()) for j in range(layer.mapping.passes)]


def _reached_outputs(syn, layer: Layer, pos: np.ndarray) -> np.ndarray:
    """Output spatial indices (npos, kh*kw) an event at input position ``pos`` reaches; -1 where none."""
    _, hi, wi = syn.input_shape
    _, ho, wo = layer.shape
    iy, ix = pos // wi, pos % wi
    sh, sw = syn.stride
    ph, pw = syn.padding
    kh, kw = syn.weight.shape[2], syn.weight.shape[3]
    ky, kx = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    ky, kx = ky.ravel()[None, :], kx.ravel()[None, :]
    if syn.op == "conv_transpose2d":
        oy, ox = iy[:, None] * sh - ph + ky, ix[:, None] * sw - pw + kx
        ok = (oy >= 0) & (oy < ho) & (ox >= 0) & (ox < wo)
    else:
        ny, nx = iy[:, None] + ph - ky, ix[:, None] + pw - kx
        oy, ox = ny // sh, nx // sw
        ok = (ny >= 0) & (nx >= 0) & (ny % sh == 0) & (nx % sw == 0) & (oy < ho) & (ox < wo)
    return np.where(ok, oy * wo + ox, -1)


def synapse_stats(layer: Layer, syn, *, max_positions: int = STATS_MAX_POSITIONS) -> SynapseStats:
    """Lockstep statistics of one synapse without building its full table (any layer size)."""
    starts, chunks, base, extra = _pass_slices(layer)
    passes = layer.mapping.passes
    P = len(chunks)
    if syn.op == "dense":
        sizes = [base + (j < extra) for j in range(passes)]
        return SynapseStats(fanout=float(layer.neurons), maxconn=[float(s.max()) for s in sizes],
                            maxconn_any=[float(s.max() > 0) for s in sizes],
                            reached=[float((s > 0).sum()) for s in sizes], sampled=False, positions_used=1)
    npos = syn.input_shape[1] * syn.input_shape[2]
    sampled = npos > max_positions
    positions = (np.unique(np.linspace(0, npos - 1, max_positions).round().astype(np.int64)) if sampled
                 else np.arange(npos, dtype=np.int64))
    cout = layer.shape[0]
    hw_out = layer.shape[1] * layer.shape[2]
    fan = 0.0
    mx = np.zeros(passes)
    anyc = np.zeros(passes)
    reached = np.zeros(passes)
    chan = np.arange(cout, dtype=np.int64)[None, None, :] * hw_out
    for b0 in range(0, len(positions), _STATS_BATCH):
        pos = positions[b0:b0 + _STATS_BATCH]
        q = _reached_outputs(syn, layer, pos)  # (nb, taps)
        flat = (q[:, :, None] + chan).reshape(len(pos), -1)
        valid = np.repeat(q >= 0, cout, axis=1).reshape(len(pos), -1)
        row = np.nonzero(valid)[0]
        f = flat[valid]
        p = np.searchsorted(starts, f, side="right") - 1
        r = f - starts[p]
        big = extra[p] * (base[p] + 1)
        j = np.where(r < big, r // (base[p] + 1), extra[p] + (r - big) // np.maximum(base[p], 1))
        cnt = np.bincount((row * passes + j) * P + p, minlength=len(pos) * passes * P).reshape(len(pos), passes, P)
        fan += float(cnt.sum())
        m = cnt.max(axis=2)
        mx += m.sum(axis=0)
        anyc += (m > 0).sum(axis=0)
        reached += (cnt > 0).sum(axis=2).sum(axis=0)
    n = len(positions)
    return SynapseStats(fanout=fan / n, maxconn=list(mx / n), maxconn_any=list(anyc / n), reached=list(reached / n),
                        sampled=sampled, positions_used=n)
