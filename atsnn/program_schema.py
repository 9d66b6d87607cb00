"""Schema of ``program.json`` (format version 1), checked before a Program is built.

Types are strict: an integer field takes only a JSON integer (not ``8191.7``, ``"1"`` or
``true``), a boolean only ``true``/``false``, a shape only a list of positive integers. Ranges
that depend on the hardware description (weights, thresholds, leak shifts, PEs) and the
array shapes are checked by :func:`atsnn.program.validate_program` once the Program is built.
Errors become one :class:`ProgramFormatError` line naming the file and the field path.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from atsnn.errors import ProgramFormatError

PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
Pair = Annotated[list[NonNegInt], Field(min_length=2, max_length=2)]
PosPair = Annotated[list[PosInt], Field(min_length=2, max_length=2)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Loose(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError(f"must be a finite number, not {v!r}")
    return v


def _positive(v: Any) -> Any:
    """A JSON number as a float that must be finite and > 0 (other types left to the schema)."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if isinstance(v, float) and not (math.isfinite(v) and v > 0):
        raise ValueError(f"must be a finite number > 0, not {v!r}")
    return v


class PoolDoc(_Strict):
    kernel: PosPair
    stride: PosPair
    padding: Pair


class SynapseDoc(_Strict):
    source: str
    op: Literal["dense", "conv2d", "conv_transpose2d"]
    weight: str
    input_shape: list[PosInt]
    stride: PosPair
    padding: Pair
    output_padding: Pair
    pool: PoolDoc | None
    flatten: bool
    max_input: PosInt


class MappingDoc(_Loose):
    unit: Literal["pe", "at"]
    pes_used: NonNegInt
    passes: PosInt
    chunk_sizes: str
    state_resident: bool
    weights_resident: bool
    resident_weight_bytes_per_pe: NonNegInt
    resident_state_bytes_per_pe: NonNegInt
    streamed_weight_bytes_per_timestep: NonNegInt
    spilled_state_bytes_per_timestep: NonNegInt
    weights_in_dram: bool
    expected_utilisation: Annotated[float, Field(ge=0, le=1)]
    notes: list[str] = []
    state_in_dram: bool = False
    spikes_in_dram: bool = False

    model_config = ConfigDict(strict=True, extra="forbid")

    @field_validator("expected_utilisation", mode="before")
    @classmethod
    def _util(cls, v: Any) -> Any:
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


class LayerDoc(_Strict):
    name: str
    neuron: str
    shape: list[PosInt] = Field(min_length=1)
    synapses: list[SynapseDoc]
    bias: str
    threshold: int
    v_init: str
    leak_shift: NonNegInt
    reset: Literal["subtract", "to_value"]
    v_reset: int
    comparator: Literal[">=", ">"]
    scale: float
    mapping: MappingDoc | None
    extra: dict[str, Any]
    thresholds: str | None = None
    current_shift: NonNegInt = 0

    @field_validator("scale", mode="before")
    @classmethod
    def _scale(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        return _finite(v) if isinstance(v, float) else v


class InputDoc(_Strict):
    shape: list[PosInt] = Field(min_length=1)
    encoding: Literal["direct", "spikes", "sequence"]
    scale: float
    bits: PosInt

    _scale = field_validator("scale", mode="before")(classmethod(lambda cls, v: _positive(v)))


class AtDoc(_Strict):
    exp_mult: NonNegInt
    d_clip: NonNegInt
    logit_scale: float

    _ls = field_validator("logit_scale", mode="before")(classmethod(lambda cls, v: _positive(v)))


class ProgramDoc(_Strict):
    format: Literal["atsnn-program"]
    format_version: int
    name: str
    hardware: dict[str, Any]
    input: InputDoc
    layers: list[LayerDoc] = Field(min_length=1)
    output: str
    early_exit: bool
    at: AtDoc | None
    report: dict[str, Any] = {}


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_program_doc(doc: Any, source: str) -> None:
    """Validate a parsed ``program.json``; raise one ProgramFormatError line naming the field."""
    if isinstance(doc, dict) and "layers" in doc and isinstance(doc["layers"], list):
        for ld in doc["layers"]:  # older files name the initial-membrane array 'vinit'
            if isinstance(ld, dict) and "vinit" in ld and "v_init" not in ld:
                ld["v_init"] = ld.pop("vinit")
    try:
        ProgramDoc.model_validate(doc)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = _path(tuple(e["loc"])) or "program"
        value = e.get("input")
        shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
        raise ProgramFormatError(f"{source}: field '{where}': {e['msg']} (got {shown})") from None
