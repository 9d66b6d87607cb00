"""hwsim/tables.py: layer tables are reused between simulate calls only for the same layer structure."""

import numpy as np

from atsnn.compiler.pipeline import compile_model
from atsnn.hwsim import tables
from atsnn.workloads.demo import MLP_MODEL, MODEL


def _same_table(a, b):
    assert a.unit == b.unit and len(a.pass_sizes) == len(b.pass_sizes)
    assert all(np.array_equal(x, y) for x, y in zip(a.pass_sizes, b.pass_sizes))
    for sa, sb in zip(a.synapses, b.synapses):
        assert all(np.array_equal(x, y) for x, y in zip(sa.conn, sb.conn))
        assert np.array_equal(sa.fanout, sb.fanout)


def test_tables_are_reused_for_the_same_structure_and_rebuilt_otherwise():
    big = compile_model(MODEL)  # 16x16 array
    small = compile_model(MODEL, hw="atsnn28-small")  # same layers, other mapping (4x4 array)
    first = tables.build_tables(big)
    again = tables.build_tables(big)
    assert all(again[n] is first[n] for n in first)  # reused, not rebuilt
    other = tables.build_tables(small)
    for l in small.layers:
        if l.mapping.unit == "pe":  # PE layers are mapped differently; the AT unit's output layer is not
            assert tables.table_key(l) != tables.table_key(big.layer(l.name))
            assert other[l.name] is not first[l.name]
        else:
            assert other[l.name] is first[l.name]
        _same_table(other[l.name], tables.build_layer_table(l))  # what an uncached build gives
    # weights do not enter the tables: a program that differs only in weight values shares them
    changed = compile_model(MODEL)
    for l in changed.layers:
        for s in l.synapses:
            s.weight = -s.weight
    shared = tables.build_tables(changed)
    assert all(shared[n] is first[n] for n in first)


def test_table_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(tables, "_TABLE_CACHE", type(tables._TABLE_CACHE)())
    monkeypatch.setattr(tables, "TABLE_CACHE_MAX_BYTES", 1)  # nothing fits: every table is built afresh
    prog = compile_model(MLP_MODEL)
    a, b = tables.build_tables(prog), tables.build_tables(prog)
    assert len(tables._TABLE_CACHE) == 0
    assert all(a[n] is not b[n] for n in a)
    for n in a:
        _same_table(a[n], b[n])
