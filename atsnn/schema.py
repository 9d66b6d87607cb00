"""Schema helpers shared by the file formats atsnn reads (hardware presets, cost tables, runs).

Every file is checked by a strict pydantic model (:class:`StrictModel`): an integer field
takes only an integer (not ``8.5``, ``"8"`` or ``true``), a number must be finite, unknown
keys are refused. :func:`one_line` turns the first validation error into one sentence that
names the key path (``pe.data_memory_bytes``, ``energy[3].energy_pj``), the bad value and the
allowed range, read from the field's own declaration so a limit is written once.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict, ValidationError


class StrictModel(BaseModel):
    """Base of the file schemas: strict types, no unknown keys, immutable once built."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def key_path(loc: tuple) -> str:
    """``('energy', 3, 'energy_pj')`` -> ``energy[3].energy_pj``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _strip(tp: Any) -> Any:
    """The model or list type inside ``Annotated[...]`` / ``X | None``."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
            if len(args) != 1:
                return tp
        else:
            return tp


def _field_at(model: type[BaseModel], loc: tuple):
    """(field info, parent model) of the field a validation error points at, or (None, None)."""
    cur: Any = model
    info, parent = None, None
    for part in loc:
        cur = _strip(cur)
        if isinstance(part, int):
            if typing.get_origin(cur) is list:
                cur = typing.get_args(cur)[0]
                continue
            return None, None
        if isinstance(cur, type) and issubclass(cur, BaseModel) and part in cur.model_fields:
            parent, info = cur, cur.model_fields[part]
            cur = info.annotation
        else:
            return None, cur if isinstance(cur, type) and issubclass(cur, BaseModel) else None
    return info, parent


def field_range(info) -> tuple[Any, Any]:
    """The closed or open bounds a field declares (``None`` where it has none)."""
    lo = hi = None
    for m in getattr(info, "metadata", ()):
        if isinstance(m, (Ge, Gt)):
            lo = m.ge if isinstance(m, Ge) else m.gt
        if isinstance(m, (Le, Lt)):
            hi = m.le if isinstance(m, Le) else m.lt
    return lo, hi


def _range_text(info) -> str:
    lo, hi = field_range(info)
    if lo is None and hi is None:
        return ""
    open_lo = any(isinstance(m, Gt) for m in info.metadata)
    open_hi = any(isinstance(m, Lt) for m in info.metadata)
    left = "(" if open_lo or lo is None else "["
    right = ")" if open_hi or hi is None else "]"
    return f"{left}{_num(lo, '-inf')}, {_num(hi, 'inf')}{right}"


def _num(v: Any, none: str) -> str:
    if v is None:
        return none
    return str(v) if isinstance(v, int) else f"{v:g}"


_KIND = {"int_type": "an integer", "int_from_float": "an integer", "float_type": "a finite number",
         "finite_number": "a finite number", "string_type": "a string", "bool_type": "true or false",
         "int_parsing": "an integer", "float_parsing": "a finite number"}


def one_line(exc: ValidationError, model: type[BaseModel]) -> tuple[str, str]:
    """(key path, one-sentence message) for the first error of ``exc`` raised by ``model``."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    path = key_path(loc) or "document"
    info, parent = _field_at(model, loc)
    value = err.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    kind = err["type"]
    if kind == "missing":
        doc = f" ({info.description})" if info is not None and info.description else ""
        return path, f"missing key '{path}'{doc}"
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(parent.model_fields)) if parent is not None else ""
        return path, f"unknown key '{path}'" + (f" (allowed: {allowed})" if allowed else "")
    rng = _range_text(info) if info is not None else ""
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return path, f"key '{path}' = {shown} is out of range {rng}"
    if kind in _KIND:
        return path, f"key '{path}' must be {_KIND[kind]}{' in ' + rng if rng else ''}, not {shown}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return path, f"key '{path}' must be a table, not {shown}"
    if kind == "list_type":
        return path, f"key '{path}' must be an array of tables ([[{loc[-1]}]] entries), not {shown}"
    if kind in ("string_too_short", "string_pattern_mismatch"):
        return path, f"key '{path}' must be a non-empty string, not {shown}"
    return path, f"key '{path}': {err['msg']} (got {shown})"
