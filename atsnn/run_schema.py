"""Schema of a run directory (docs/results.md), checked before anything reads its figures.

``summary.json`` is a strict pydantic model; each CSV table has declared columns with a kind
(integer, number, text, boolean) and a range, checked column by column with pandas. Rules
across files follow: the policies of ``per_sample.csv`` are those of the summary, each with
one row per sample, and timesteps lie in ``1..timesteps_max``. Errors are one
:class:`atsnn.errors.AtsnnError` line naming the file, the key or column, and the limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError

from atsnn.errors import AtsnnError
from atsnn.schema import StrictModel, one_line

NonNeg = Field(ge=0, allow_inf_nan=False)


class _PolicyEntry(StrictModel):
    params: dict[str, float | int | str | None]
    accuracy: float | None = Field(ge=0, le=1, allow_inf_nan=False)
    avg_timestep: float = NonNeg
    energy_per_inference_uj: float = NonNeg
    latency_per_inference_ms: float = NonNeg
    cycles_per_inference: float = NonNeg
    fps: float = NonNeg
    energy_saved_vs_fixed_pct: float | None = Field(allow_inf_nan=False)
    at_energy_share_of_pe: float | None = Field(ge=0, allow_inf_nan=False)
    dataset_energy_j: float = NonNeg


class RunSummary(StrictModel):
    """``summary.json`` of a run directory."""

    program: str = Field(min_length=1)
    hardware: str = Field(min_length=1)
    cost_table: str = Field(min_length=1)
    clock_hz: float = Field(gt=0, allow_inf_nan=False)
    accelerators: int = Field(ge=1)
    timesteps_max: int = Field(ge=1)
    samples: int = Field(ge=1)
    dataset: str
    synthetic_weights: bool = False
    policies: dict[str, _PolicyEntry] = Field(min_length=1)
    notes: list[str] = []


@dataclass(frozen=True)
class Column:
    """A CSV column: ``kind`` is 'int', 'float', 'str' or 'bool'; numbers lie in [lo, hi]."""

    kind: str
    lo: float | None = None
    hi: float | None = None


_N = Column("float", 0)
TABLES: dict[str, dict[str, Column]] = {
    "per_sample.csv": dict(policy=Column("str"), sample=Column("int", 0), label=Column("int", -1),
                           predicted=Column("int", 0), correct=Column("bool"),
                           exit_timestep=Column("int", 1), cycles=_N, latency_s=_N, energy_pj=_N),
    "per_layer_timestep.csv": dict(
        layer=Column("str"), unit=Column("str"), timestep=Column("int", 1), events=_N, synops=_N,
        updates=_N, spikes=_N, firing_rate=Column("float", 0, 1), sat_hi=_N, sat_lo=_N,
        compute_cycles=_N, stall_cycles=_N, cycles=_N, glb_bytes=_N, dram_bytes=_N, energy_pj=_N),
    "energy_breakdown.csv": dict(policy=Column("str"), layer=Column("str"),
                                 component=Column("str"), energy_pj=_N),
    "energy_per_timestep.csv": dict(timestep=Column("int", 1), component=Column("str"),
                                    energy_pj=_N),
    "pe_utilisation.csv": dict(layer=Column("str"), pe=Column("str"), row=Column("int", 0),
                               col=Column("int", 0), utilisation=_N),
    "sweep_dtsnn.csv": dict(theta=Column("float", 0, 1), accuracy=Column("float", 0, 1),
                            avg_timestep=_N, energy_per_inference_uj=_N),
    "sweep_atsn.csv": dict(cl_init=Column("float", 0, 1), tau_cl=Column("float", 0, 1),
                           accuracy=Column("float", 0, 1), avg_timestep=_N,
                           energy_per_inference_uj=_N),
}
#: files every run directory has; the sweep tables are optional
REQUIRED = ("summary.json", "per_sample.csv", "per_layer_timestep.csv", "energy_breakdown.csv",
            "energy_per_timestep.csv", "pe_utilisation.csv")
#: the accuracy columns of the sweep tables are empty when the data had no labels
_NULLABLE = {("sweep_dtsnn.csv", "accuracy"), ("sweep_atsn.csv", "accuracy")}


@dataclass(frozen=True)
class RunDir:
    """A checked run directory: its summary and its tables (optional ones may be ``None``)."""

    path: Path
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame | None]


def read_summary(path: Path) -> dict[str, Any]:
    """``summary.json`` checked against :class:`RunSummary` (returned as the parsed JSON)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AtsnnError(f"{path}: not valid JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(doc, dict):
        raise AtsnnError(f"{path}: expected a JSON object, not {type(doc).__name__}")
    try:
        RunSummary.model_validate(doc)
    except ValidationError as exc:
        _, msg = one_line(exc, RunSummary)
        raise AtsnnError(f"{path}: {msg}") from None
    return doc


def read_table(path: Path, columns: dict[str, Column]) -> pd.DataFrame:
    """One CSV table with the declared columns, kinds and ranges, or a one-line error."""
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise AtsnnError(f"{path}: not a readable CSV table ({' '.join(str(exc).split())})") from None
    if df.empty:
        raise AtsnnError(f"{path}: table has no rows")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AtsnnError(f"{path}: missing column '{missing[0]}' (the table has "
                         f"{', '.join(columns)})")
    for name, col in columns.items():
        df[name] = _check_column(path, name, df[name], col, (path.name, name) in _NULLABLE)
    return df


def _check_column(path: Path, name: str, s: pd.Series, col: Column, nullable: bool) -> pd.Series:
    where = f"{path}: column '{name}'"
    if col.kind == "str":
        if s.isna().any():
            raise AtsnnError(f"{where}: empty cell in line {int(np.flatnonzero(s.isna())[0]) + 2}")
        return s.astype(str)
    if col.kind == "bool":
        text = s.astype(str).str.strip().str.lower()
        bad = ~text.isin(("true", "false"))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise AtsnnError(f"{where}: line {i + 2} must be True or False, not {s.iloc[i]!r}")
        return text == "true"
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & ~(s.isna() & nullable)
    if not nullable:
        bad |= s.isna()
    bad |= ~np.isfinite(num.fillna(0.0))
    if col.kind == "int":
        bad |= num.notna() & (num != np.round(num))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        kind = "an integer" if col.kind == "int" else "a finite number"
        raise AtsnnError(f"{where}: line {i + 2} must be {kind}, not {s.iloc[i]!r}")
    for limit, test in ((col.lo, num < (col.lo if col.lo is not None else 0)),
                        (col.hi, num > (col.hi if col.hi is not None else 0))):
        if limit is None:
            continue
        if test.any():
            i = int(np.flatnonzero(test.to_numpy())[0])
            raise AtsnnError(f"{where}: line {i + 2} value {num.iloc[i]:g} is out of range "
                             f"[{_g(col.lo, '-inf')}, {_g(col.hi, 'inf')}{')' if col.hi is None else ']'}")
    return num.astype("int64") if col.kind == "int" else num.astype(float)


def _g(v, none: str) -> str:
    return none if v is None else f"{v:g}"


def read_run(run_dir: str | Path) -> RunDir:
    """Read and check every file of a run directory (the output of ``atsnn simulate``)."""
    run = Path(run_dir)
    if run.exists() and not run.is_dir():
        raise AtsnnError(f"run directory '{run}' is a file, not a directory written by "
                         "'atsnn simulate'")
    if not run.is_dir():
        raise AtsnnError(f"run directory '{run}' does not exist")
    for f in REQUIRED:
        if not (run / f).is_file():
            raise AtsnnError(f"run directory '{run}' has no {f}; is it the output of "
                             "'atsnn simulate'?")
    summary = read_summary(run / "summary.json")
    tables: dict[str, pd.DataFrame | None] = {}
    for name, columns in TABLES.items():
        p = run / name
        tables[name] = read_table(p, columns) if p.is_file() or name in REQUIRED else None
    _check_across(run, summary, tables)
    return RunDir(run, summary, tables)


def _check_across(run: Path, summary: dict, tables: dict[str, pd.DataFrame | None]) -> None:
    T, n = summary["timesteps_max"], summary["samples"]
    ps = tables["per_sample.csv"]
    pols = set(ps["policy"])
    if pols != set(summary["policies"]):
        raise AtsnnError(f"{run / 'per_sample.csv'}: policies {sorted(pols)} are not those of "
                         f"summary.json {sorted(summary['policies'])}")
    counts = ps.groupby("policy").size()
    if (counts != n).any():
        p = counts.index[(counts != n).to_numpy()][0]
        raise AtsnnError(f"{run / 'per_sample.csv'}: policy '{p}' has {int(counts[p])} rows, "
                         f"summary.json says {n} samples")
    for name, col in (("per_sample.csv", "exit_timestep"), ("per_layer_timestep.csv", "timestep"),
                      ("energy_per_timestep.csv", "timestep")):
        over = tables[name][col] > T
        if over.any():
            i = int(np.flatnonzero(over.to_numpy())[0])
            raise AtsnnError(f"{run / name}: column '{col}' line {i + 2} value "
                             f"{int(tables[name][col].iloc[i])} is above timesteps_max = {T}")
    units = set(tables["per_layer_timestep.csv"]["unit"]) - {"pe", "at"}
    if units:
        raise AtsnnError(f"{run / 'per_layer_timestep.csv'}: column 'unit' has "
                         f"'{sorted(units)[0]}' (allowed: pe, at)")
