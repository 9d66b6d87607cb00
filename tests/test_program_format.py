"""Program save/load: round trip, no pickle, version check, corrupt files."""

import json

import numpy as np
import pytest

from atsnn.config import load_hardware
from atsnn.errors import ProgramFormatError
from atsnn.program import (AtParams, InputSpec, Layer, LayerMapping, Pool, Program, Synapse, load_program,
                           save_program)


def _program():
    hw = load_hardware("atsnn28-small")
    rng = np.random.default_rng(0)
    conv = Synapse(source="input", op="conv2d", weight=rng.integers(-128, 128, (4, 1, 3, 3)), input_shape=(1, 8, 8),
                   padding=(1, 1), max_input=255)
    l1 = Layer(name="c1", neuron="if", shape=(4, 8, 8), synapses=[conv], bias=np.arange(4), threshold=100,
               v_init=np.full(4, 50), scale=0.01,
               mapping=LayerMapping(unit="pe", pes_used=15, passes=1, chunk_sizes=np.full(15, 17),
                                    state_resident=True, weights_resident=True, resident_weight_bytes_per_pe=18,
                                    resident_state_bytes_per_pe=85, streamed_weight_bytes_per_timestep=0,
                                    spilled_state_bytes_per_timestep=0, weights_in_dram=False,
                                    expected_utilisation=0.99))
    fc = Synapse(source="c1", op="dense", weight=rng.integers(-128, 128, (10, 64)), input_shape=(64,),
                 pool=Pool(kernel=(2, 2), stride=(2, 2)), flatten=True, max_input=4)
    out = Layer(name="out", neuron="integrator", shape=(10,), synapses=[fc], bias=np.zeros(10, int), threshold=0,
                v_init=np.zeros(10, int), scale=0.02)
    return Program(name="t", hardware=hw, input=InputSpec(shape=(1, 8, 8), scale=16 / 255), layers=[l1, out],
                   output="out", early_exit=True, at=AtParams(exp_mult=1234, d_clip=99), report={"a": [1, 2]})


def test_round_trip(tmp_path):
    p = _program()
    save_program(p, tmp_path / "prog")
    q = load_program(tmp_path / "prog")
    assert q.hardware == p.hardware and q.output == "out" and q.at == p.at and q.report == p.report
    for a, b in zip(p.layers, q.layers):
        assert a.name == b.name and a.shape == b.shape and a.threshold == b.threshold
        np.testing.assert_array_equal(a.bias, b.bias)
        np.testing.assert_array_equal(a.v_init, b.v_init)
        for sa, sb in zip(a.synapses, b.synapses):
            np.testing.assert_array_equal(sa.weight, sb.weight)
            assert (sa.pool, sa.flatten, sa.max_input, sa.padding) == (sb.pool, sb.flatten, sb.max_input, sb.padding)
    np.testing.assert_array_equal(q.layers[0].mapping.chunk_sizes, p.layers[0].mapping.chunk_sizes)
    # arrays are loadable without pickle
    with np.load(tmp_path / "prog" / "arrays.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_old_version_rejected(tmp_path):
    save_program(_program(), tmp_path / "prog")
    pj = tmp_path / "prog" / "program.json"
    doc = json.loads(pj.read_text())
    doc["format_version"] = 0
    pj.write_text(json.dumps(doc))
    with pytest.raises(ProgramFormatError, match="format version 0 is not supported.*recompile"):
        load_program(tmp_path / "prog")


def test_missing_and_corrupt(tmp_path):
    with pytest.raises(ProgramFormatError, match="does not exist"):
        load_program(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProgramFormatError, match="not a compiled program"):
        load_program(tmp_path / "empty")
    save_program(_program(), tmp_path / "prog")
    (tmp_path / "prog" / "arrays.npz").write_bytes(b"garbage")
    with pytest.raises(ProgramFormatError, match="cannot read arrays"):
        load_program(tmp_path / "prog")


def test_weights_out_of_range_rejected(tmp_path):
    p = _program()
    p.layers[0].synapses[0].weight[0, 0, 0, 0] = 500
    save_program(p, tmp_path / "prog")
    with pytest.raises(ProgramFormatError, match="layer 'c1': weights outside"):
        load_program(tmp_path / "prog")
