"""The compiled ``Program``: what the compiler produces and hwsim and rtl execute.

A Program is plain data (integers, floats, strings, numpy integer arrays),
saved to a directory as ``program.json`` (everything but arrays) and
``arrays.npz`` (loaded with ``allow_pickle=False``); nothing executable is
stored. ``FORMAT_VERSION`` is bumped on any incompatible change and
:func:`load_program` rejects other versions with a clear error.

Semantics of every field are in ``docs/hardware.md`` (contract sec. 2-7).
Shapes exclude the batch dimension and are channels-first ``(C, H, W)`` or
``(N,)``. Neuron indices are C-order flat indices.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from atsnn.config import HardwareConfig, hardware_from_dict
from atsnn.errors import ProgramFormatError

FORMAT_VERSION = 1

SYNAPSE_OPS = ("dense", "conv2d", "conv_transpose2d")
NEURON_KINDS = ("if", "lif", "integrator")
#: ``InputSpec.encoding``: one multi-bit image repeated every timestep, binary spike trains, or one multi-bit
#: frame per timestep (docs/hardware.md sec. 3, 11)
INPUT_ENCODINGS = ("direct", "spikes", "sequence")
RESET_MODES = ("subtract", "to_value")
COMPARATORS = (">=", ">")


@dataclass(kw_only=True)
class Pool:
    """Sum-pooling applied to the source map before the synaptic op (counts add)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)


@dataclass(kw_only=True)
class Synapse:
    """One synaptic input of a layer: ``source`` map -> [pool] -> [flatten] -> op(weight).

    ``weight`` layouts (PyTorch): dense ``(out, in)``; conv2d ``(Cout, Cin, kh, kw)``;
    conv_transpose2d ``(Cin, Cout, kh, kw)``. ``input_shape`` is the shape the op
    sees (after pool and flatten); ``max_input`` the largest value one element
    of that input can take (1 spikes, pool window for counts, 2**input_bits-1
    for pixels).
    """

    source: str  # "input" or the name of an earlier layer
    op: str
    weight: np.ndarray  # integer (int32 storage), values within weight_bits
    input_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    output_padding: tuple[int, int] = (0, 0)
    pool: Pool | None = None
    flatten: bool = False
    max_input: int = 1


@dataclass(kw_only=True)
class LayerMapping:
    """Where a layer runs and what moves per timestep (contract sec. 7)."""

    unit: str  # "pe" or "at"
    pes_used: int
    passes: int
    chunk_sizes: np.ndarray  # (pes_used,) neurons per PE (C-order contiguous chunks)
    state_resident: bool  # membrane+accumulator stay in PE memory between timesteps
    weights_resident: bool  # weights stay in PE (or AT) memory
    resident_weight_bytes_per_pe: int  # max over PEs
    resident_state_bytes_per_pe: int  # max over PEs
    streamed_weight_bytes_per_timestep: int  # GLB/DRAM -> PE weight traffic (upper bound for event-driven)
    spilled_state_bytes_per_timestep: int  # GLB <-> PE (load + store)
    weights_in_dram: bool  # weights beyond GLB capacity, streamed from DRAM
    expected_utilisation: float  # mean chunk / max chunk
    notes: list[str] = field(default_factory=list)
    state_in_dram: bool = False  # spilled state beyond GLB capacity lives in DRAM
    spikes_in_dram: bool = False  # the layer's spike map does not fit the GLB: DRAM write + reads per timestep


@dataclass(kw_only=True)
class Layer:
    """A neuron layer with its synaptic inputs (contract sec. 3-5)."""

    name: str
    neuron: str  # "if" | "lif" | "integrator" | "ilif" (sec. 10) | "psn" (sliding PSN, sec. 11)
    shape: tuple[int, ...]
    synapses: list[Synapse]
    bias: np.ndarray  # (C,) int, per output channel (C = shape[0])
    threshold: int  # ignored for "integrator"
    v_init: np.ndarray  # (C,) int
    leak_shift: int = 0
    reset: str = "subtract"
    v_reset: int = 0
    comparator: str = ">="
    scale: float = 1.0  # real membrane value = integer * scale
    mapping: LayerMapping | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # neuron-family parameters (JSON-safe)
    #: per-output-channel thresholds (IF/LIF, contract sec. 2); ``None``: every channel uses ``threshold``,
    #: which otherwise is their maximum
    thresholds: np.ndarray | None = None
    current_shift: int = 0  # the accumulated current enters the membrane as (a + r) >> c (sec. 2, 4)

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    def channel_thresholds(self) -> np.ndarray:
        """``(C,)`` int64 threshold of every output channel."""
        if self.thresholds is None:
            return np.full(self.channels, int(self.threshold), dtype=np.int64)
        return np.asarray(self.thresholds, dtype=np.int64)

    def neuron_thresholds(self) -> np.ndarray:
        """``(N,)`` int64 threshold of every neuron (C order: a channel's neurons are contiguous)."""
        return np.repeat(self.channel_thresholds(), self.neurons // self.channels)

    @property
    def channels(self) -> int:
        return int(self.shape[0])


@dataclass(kw_only=True)
class InputSpec:
    shape: tuple[int, ...]
    encoding: str = "direct"  # "direct": multi-bit values every timestep; "spikes": (T, *shape) binary;
    #                           "sequence": (T, *shape) multi-bit, frame t at timestep t (sec. 11)
    scale: float = 1.0  # real input = integer * scale
    bits: int = 8


@dataclass(kw_only=True)
class AtParams:
    """Compile-time constants of the AT unit's exit test (contract sec. 5, 7)."""

    exp_mult: int
    d_clip: int
    logit_scale: float = 1.0


@dataclass(kw_only=True)
class Program:
    name: str
    hardware: HardwareConfig
    input: InputSpec
    layers: list[Layer]
    output: str  # name of the output (integrator) layer
    early_exit: bool  # output layer on the AT unit
    at: AtParams | None
    report: dict[str, Any] = field(default_factory=dict)  # compile decisions, JSON-safe
    format_version: int = FORMAT_VERSION

    def layer(self, name: str) -> Layer:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)

    @property
    def output_layer(self) -> Layer:
        return self.layer(self.output)

    @property
    def classes(self) -> int:
        return self.output_layer.neurons


# --------------------------------------------------------------------------- save / load
def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        raise TypeError("arrays must go to arrays.npz")
    return obj


def save_program(program: Program, directory: str | Path) -> Path:
    """Write ``program.json`` + ``arrays.npz`` into ``directory`` (created).

    Files are written to temporary names and renamed, so a failure leaves no
    half-written program.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}

    def arr(key: str, a: np.ndarray) -> str:
        arrays[key] = np.ascontiguousarray(a)
        return key

    layers = []
    for li, l in enumerate(program.layers):
        syns = []
        for si, s in enumerate(l.synapses):
            syns.append(dict(source=s.source, op=s.op, weight=arr(f"l{li}_s{si}_weight", s.weight.astype(np.int32)),
                             input_shape=list(s.input_shape), stride=list(s.stride), padding=list(s.padding),
                             output_padding=list(s.output_padding),
                             pool=None if s.pool is None else dict(kernel=list(s.pool.kernel),
                                                                   stride=list(s.pool.stride),
                                                                   padding=list(s.pool.padding)),
                             flatten=bool(s.flatten), max_input=int(s.max_input)))
        m = None
        if l.mapping is not None:
            md = asdict(l.mapping)
            md["chunk_sizes"] = arr(f"l{li}_chunks", np.asarray(l.mapping.chunk_sizes, dtype=np.int64))
            m = md
        layers.append(dict(name=l.name, neuron=l.neuron, shape=list(l.shape), synapses=syns,
                           bias=arr(f"l{li}_bias", np.asarray(l.bias, dtype=np.int64)),
                           threshold=int(l.threshold),
                           v_init=arr(f"l{li}_vinit", np.asarray(l.v_init, dtype=np.int64)),
                           leak_shift=int(l.leak_shift), reset=l.reset, v_reset=int(l.v_reset),
                           comparator=l.comparator, scale=float(l.scale), mapping=m, extra=l.extra,
                           thresholds=None if l.thresholds is None else
                           arr(f"l{li}_thr", np.asarray(l.thresholds, dtype=np.int64)),
                           current_shift=int(l.current_shift)))
    doc = dict(format="atsnn-program", format_version=program.format_version, name=program.name,
               hardware=program.hardware.to_dict(), input=asdict(program.input), layers=layers,
               output=program.output, early_exit=bool(program.early_exit),
               at=None if program.at is None else asdict(program.at), report=program.report)
    text = json.dumps(_jsonable(doc), indent=1)
    tmp_json = d / ".program.json.tmp"
    tmp_npz = d / ".arrays.tmp.npz"
    tmp_json.write_text(text, encoding="utf-8")
    np.savez_compressed(tmp_npz, **arrays)
    tmp_npz.replace(d / "arrays.npz")
    tmp_json.replace(d / "program.json")
    return d


def load_program(directory: str | Path) -> Program:
    """Load a Program saved by :func:`save_program`; rejects other format versions."""
    d = Path(directory)
    pj, pa = d / "program.json", d / "arrays.npz"
    if d.exists() and not d.is_dir():
        raise ProgramFormatError(f"program path '{d}' is a file, not a compiled program directory")
    if not d.is_dir():
        raise ProgramFormatError(f"program directory '{d}' does not exist")
    if not pj.is_file() or not pa.is_file():
        raise ProgramFormatError(f"'{d}' is not a compiled program (needs program.json and arrays.npz)")
    try:
        doc = json.loads(pj.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProgramFormatError(f"{pj}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != "atsnn-program":
        raise ProgramFormatError(f"{pj}: not an atsnn program file")
    ver = doc.get("format_version")
    if ver != FORMAT_VERSION:
        raise ProgramFormatError(f"{pj}: program format version {ver!r} is not supported (this atsnn reads "
                                 f"version {FORMAT_VERSION}); recompile the model with 'atsnn compile'")
    from atsnn.program_schema import check_program_doc
    check_program_doc(doc, str(pj))
    try:
        npz = np.load(pa, allow_pickle=False)
        arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zipfile/ValueError/OSError: corrupt file
        raise ProgramFormatError(f"{pa}: cannot read arrays ({exc})") from None

    def get(key):
        if key not in arrays:
            raise ProgramFormatError(f"{pa}: missing array '{key}'")
        a = arrays[key]
        if a.dtype.kind not in "iu":
            raise ProgramFormatError(f"{pa}: array '{key}' has dtype {a.dtype}; program arrays hold "
                                     "integers (recompile the model with 'atsnn compile')")
        return a

    try:
        hw = hardware_from_dict(doc["hardware"], source=f"{pj} [hardware]")
        layers = []
        for ld in doc["layers"]:
            syns = []
            for sd in ld["synapses"]:
                pool = sd.get("pool")
                syns.append(Synapse(source=sd["source"], op=sd["op"], weight=get(sd["weight"]).astype(np.int32),
                                    input_shape=tuple(sd["input_shape"]), stride=tuple(sd["stride"]),
                                    padding=tuple(sd["padding"]), output_padding=tuple(sd["output_padding"]),
                                    pool=None if pool is None else Pool(kernel=tuple(pool["kernel"]),
                                                                        stride=tuple(pool["stride"]),
                                                                        padding=tuple(pool["padding"])),
                                    flatten=bool(sd["flatten"]), max_input=int(sd["max_input"])))
            m = ld.get("mapping")
            mapping = None
            if m is not None:
                m = dict(m)
                m["chunk_sizes"] = get(m["chunk_sizes"]).astype(np.int64)
                mapping = LayerMapping(**m)
            layers.append(Layer(name=ld["name"], neuron=ld["neuron"], shape=tuple(ld["shape"]), synapses=syns,
                                bias=get(ld["bias"]).astype(np.int64), threshold=int(ld["threshold"]),
                                v_init=get(ld["vinit"] if "vinit" in ld else ld["v_init"]).astype(np.int64),
                                leak_shift=int(ld["leak_shift"]), reset=ld["reset"], v_reset=int(ld["v_reset"]),
                                comparator=ld["comparator"], scale=float(ld["scale"]), mapping=mapping,
                                extra=ld.get("extra", {}),
                                thresholds=None if ld.get("thresholds") is None
                                else get(ld["thresholds"]).astype(np.int64),
                                current_shift=int(ld.get("current_shift", 0))))
        inp = doc["input"]
        program = Program(name=doc["name"], hardware=hw,
                          input=InputSpec(shape=tuple(inp["shape"]), encoding=inp["encoding"],
                                          scale=float(inp["scale"]), bits=int(inp["bits"])),
                          layers=layers, output=doc["output"], early_exit=bool(doc["early_exit"]),
                          at=None if doc.get("at") is None else AtParams(**doc["at"]),
                          report=doc.get("report", {}), format_version=ver)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProgramFormatError(f"{pj}: malformed program ({type(exc).__name__}: {exc})") from None
    try:
        validate_program(program)
    except ProgramFormatError as exc:
        if str(exc).startswith(str(d)):
            raise
        raise ProgramFormatError(f"program '{d}': {exc}") from None
    return program


def validate_program(program: Program) -> None:
    """Structural checks shared by load and by the compiler's output stage."""
    hw = program.hardware
    names = set()
    for l in program.layers:
        where = f"layer '{l.name}'"
        if l.name in names or l.name == "input":
            raise ProgramFormatError(f"{where}: duplicate or reserved layer name")
        if l.neuron not in NEURON_KINDS and l.neuron not in l.extra.get("_allowed_kinds", ()):
            if l.neuron not in ("ilif", "psn"):
                raise ProgramFormatError(f"{where}: unknown neuron kind '{l.neuron}'")
        if l.reset not in RESET_MODES:
            raise ProgramFormatError(f"{where}: unknown reset mode '{l.reset}'")
        if l.comparator not in COMPARATORS:
            raise ProgramFormatError(f"{where}: unknown comparator '{l.comparator}'")
        for s in l.synapses:
            if s.source != "input" and s.source not in names:
                raise ProgramFormatError(f"{where}: synapse source '{s.source}' is not an earlier layer")
            if s.op not in SYNAPSE_OPS:
                raise ProgramFormatError(f"{where}: unknown synapse op '{s.op}'")
            if s.weight.size and (s.weight.min() < hw.weight_min or s.weight.max() > hw.weight_max):
                raise ProgramFormatError(f"{where}: weights outside [{hw.weight_min}, {hw.weight_max}]")
        if l.neuron != "integrator" and not (1 <= l.threshold <= hw.threshold_max):
            raise ProgramFormatError(f"{where}: threshold {l.threshold} outside [1, {hw.threshold_max}]")
        _check_threshold_and_shift(l, hw, where)
        if not (0 <= l.leak_shift <= hw.max_leak_shift):
            raise ProgramFormatError(f"{where}: leak_shift {l.leak_shift} outside [0, {hw.max_leak_shift}]")
        _check_layer_arrays(l, hw, where)
        names.add(l.name)
    if not 1 <= program.input.bits <= hw.numeric.input_bits:
        raise ProgramFormatError(f"program '{program.name}': input.bits = {program.input.bits} outside "
                                 f"[1, {hw.numeric.input_bits}] (numeric.input_bits)")
    if not (math.isfinite(program.input.scale) and program.input.scale > 0):
        raise ProgramFormatError(f"program '{program.name}': input.scale = {program.input.scale!r} must "
                                 "be a finite number > 0")
    if program.output not in names:
        raise ProgramFormatError(f"output layer '{program.output}' is not a layer of the program")
    if program.input.encoding not in INPUT_ENCODINGS:
        raise ProgramFormatError(f"program '{program.name}': input encoding {program.input.encoding!r} is not one of "
                                 f"{', '.join(INPUT_ENCODINGS)}")
    from atsnn import psn
    for l in program.layers:
        if psn.is_psn_layer(l) or psn.layer_params(l) is not None:
            validate_psn_layer(l, hw)
    if psn.is_psn_layer(program.output_layer):
        raise ProgramFormatError(f"output layer '{program.output}' is a sliding PSN, which has no membrane to read "
                                 "out; end the network with an integrator (e.g. a spike-count readout)")
    from atsnn import ilif
    if ilif.is_ilif(program):
        ilif.validate(program)


#: neuron kinds that may have per-channel thresholds and a current shift (contract sec. 2)
SHIFTED_KINDS = ("if", "lif")


def _check_threshold_and_shift(l: Layer, hw: HardwareConfig, where: str) -> None:
    """Per-channel thresholds and the current shift (contract sec. 2): IF/LIF layers only, in range."""
    if l.thresholds is not None:
        t = np.asarray(l.thresholds)
        if l.neuron not in SHIFTED_KINDS:
            raise ProgramFormatError(f"{where}: per-channel thresholds are for IF/LIF layers, not "
                                     f"'{l.neuron}'")
        if t.shape != (l.channels,):
            raise ProgramFormatError(f"{where}: thresholds has shape {t.shape}, expected ({l.channels},) "
                                     "(one per output channel)")
        if t.size and (int(t.min()) < 1 or int(t.max()) > hw.threshold_max):
            raise ProgramFormatError(f"{where}: thresholds outside [1, {hw.threshold_max}]")
        if t.size and int(t.max()) != int(l.threshold):
            raise ProgramFormatError(f"{where}: threshold {l.threshold} is not the largest channel "
                                     f"threshold {int(t.max())}")
    top = hw.numeric.accumulator_bits - 1
    if not isinstance(l.current_shift, (int, np.integer)) or not 0 <= l.current_shift <= top:
        raise ProgramFormatError(f"{where}: current_shift {l.current_shift!r} outside [0, {top}]")
    if l.current_shift and l.neuron not in SHIFTED_KINDS:
        raise ProgramFormatError(f"{where}: current_shift is for IF/LIF layers, not '{l.neuron}'")


def _check_layer_arrays(l: Layer, hw: HardwareConfig, where: str) -> None:
    """Array lengths and shapes agree with the layer's shape, ops and mapping (contract sec. 2-7)."""
    c = l.channels
    for key, a in (("bias", l.bias), ("v_init", l.v_init)):
        if np.asarray(a).shape != (c,):
            raise ProgramFormatError(f"{where}: {key} has shape {np.asarray(a).shape}, expected ({c},) "
                                     f"(one per output channel of shape {tuple(l.shape)})")
    for si, s in enumerate(l.synapses):
        w = s.weight.shape
        sw = f"{where} synapse {si}"
        if s.op == "dense":
            need = (l.neurons, int(np.prod(s.input_shape)))
            if w != need:
                raise ProgramFormatError(f"{sw}: dense weight has shape {w}, expected {need} "
                                         "(out, in)")
        else:
            if len(w) != 4 or len(s.input_shape) != 3 or len(l.shape) != 3:
                raise ProgramFormatError(f"{sw}: {s.op} needs a 4-d weight and (C, H, W) shapes; "
                                         f"weight {w}, input {tuple(s.input_shape)}, layer "
                                         f"{tuple(l.shape)}")
            cout, cin = (w[0], w[1]) if s.op == "conv2d" else (w[1], w[0])
            if cout != c or cin != s.input_shape[0]:
                raise ProgramFormatError(f"{sw}: {s.op} weight {w} does not match {s.input_shape[0]} "
                                         f"input and {c} output channels")
    m = l.mapping
    if m is not None:
        if m.pes_used > hw.pe_count:
            raise ProgramFormatError(f"{where}: mapping.pes_used = {m.pes_used} exceeds the array's "
                                     f"{hw.pe_count} PEs")
        cs = np.asarray(m.chunk_sizes)
        if m.unit == "pe" and (cs.shape != (m.pes_used,) or int(cs.sum()) > l.neurons
                               or (cs.size and cs.min() < 0)):
            raise ProgramFormatError(f"{where}: mapping.chunk_sizes (shape {cs.shape}, sum "
                                     f"{int(cs.sum())}) must give {m.pes_used} non-negative chunks "
                                     f"of at most {l.neurons} neurons in all")


def validate_psn_layer(layer: Layer, hw: HardwareConfig) -> None:
    """Rules of a sliding-PSN layer (docs/hardware.md sec. 11); raises a one-line ProgramFormatError.

    ``extra["psn"] = {"mode": "sliding", "k": k, "taps": [q_0, ..., q_{k-1}], "shift": s}`` with
    ``1 <= k <= numeric.psn_max_taps``, integer taps within the signed ``numeric.psn_tap_bits`` range and
    an integer shift ``0 <= s <= 62``; no leak. The threshold range is checked with every layer (sec. 2).
    """
    from atsnn import psn
    where = f"layer '{layer.name}'"
    p = psn.layer_params(layer)
    if layer.neuron != psn.KIND:
        raise ProgramFormatError(f"{where}: extra['{psn.EXTRA_KEY}'] on a '{layer.neuron}' layer; only neuron "
                                 f"'{psn.KIND}' layers carry PSN parameters")
    if p is None:
        raise ProgramFormatError(f"{where}: PSN layer without extra['{psn.EXTRA_KEY}'] parameters (mode, k, taps, "
                                 "shift)")
    mode = p.get("mode")
    if mode != psn.SLIDING:
        raise ProgramFormatError(psn.unsupported_mode_message(where, str(mode)))
    taps = p.get("taps")
    if not isinstance(taps, (list, tuple)) or not all(isinstance(q, int) and not isinstance(q, bool) for q in taps):
        raise ProgramFormatError(f"{where}: PSN taps must be a list of integers, not {taps!r}")
    k = len(taps)
    if not 1 <= k <= hw.numeric.psn_max_taps:
        raise ProgramFormatError(f"{where}: PSN has k = {k} taps; 1 <= k <= numeric.psn_max_taps = "
                                 f"{hw.numeric.psn_max_taps}")
    if "k" in p and p["k"] != k:
        raise ProgramFormatError(f"{where}: PSN k = {p['k']!r} but {k} taps are given")
    lo, hi = -(1 << (hw.numeric.psn_tap_bits - 1)), (1 << (hw.numeric.psn_tap_bits - 1)) - 1
    bad = [q for q in taps if not lo <= q <= hi]
    if bad:
        raise ProgramFormatError(f"{where}: PSN tap {bad[0]} outside [{lo}, {hi}] (numeric.psn_tap_bits = "
                                 f"{hw.numeric.psn_tap_bits})")
    shift = p.get("shift")
    if not isinstance(shift, int) or isinstance(shift, bool) or not 0 <= shift <= 62:
        raise ProgramFormatError(f"{where}: PSN shift must be an integer in [0, 62], not {shift!r}")
    if layer.leak_shift != 0:
        raise ProgramFormatError(f"{where}: a PSN neuron has no membrane to leak; leak_shift must be 0, not "
                                 f"{layer.leak_shift}")
