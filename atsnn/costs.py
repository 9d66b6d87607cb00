"""Per-action energy tables (ERT style): energy per (component, action) in pJ.

A cost table is a versioned TOML file (``atsnn/presets/costs/*.toml``) with a
``[meta]`` table (``name``, ``version``, ``technology_nm``,
``characterised_clock_hz``, ``default_dram``), a list of ``[[energy]]``
entries (``component``, ``action``, ``energy_pj``, ``source``; memories also
give ``port_bytes``) and a list of ``[[leakage]]`` entries (``component``,
``power_mw``, ``source``). Energies are per action and independent of the
clock; leakage is charged as power x time by the simulator.

Simulated actions name primitives by width (``add24`` needs an adder of 24
bits); :meth:`CostTable.logic_pj` charges the smallest tabulated primitive at
least that wide, so a change of width in the hardware description changes the
cost without a second table. Every report records :attr:`CostTable.ref`.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Mapping

from pydantic import Field, StringConstraints, ValidationError

from atsnn.errors import ConfigError
from atsnn.schema import StrictModel, one_line

PRESET_DIR = Path(__file__).parent / "presets" / "costs"
DEFAULT_COSTS = "sata28-500mhz"

#: logic primitive kinds whose width is part of the action name (``add16``)
LOGIC_KINDS = ("add", "compare", "register", "mul", "and", "shift")

#: memory components the simulator charges per access (``read``/``write``)
MEMORY_COMPONENTS = ("spike_buffer", "pe_data_memory", "at_data_memory", "dtsnn_lut", "glb")
#: always-on components whose leakage the energy model charges (docs/hardware.md sec. 8)
LEAKAGE_COMPONENTS = ("pe_data_memory", "spike_buffer", "adder16", "comparator16", "register16",
                      "multiplier16", "at_data_memory", "glb_bank", "dtsnn_lut")


@dataclass(frozen=True)
class EnergyEntry:
    component: str
    action: str
    energy_pj: float
    source: str
    port_bytes: int | None = None


@dataclass(frozen=True)
class LeakageEntry:
    component: str
    power_mw: float
    source: str


@dataclass(frozen=True)
class CostTable:
    """A validated cost table with one DRAM technology selected."""

    name: str
    version: str
    technology_nm: int
    characterised_clock_hz: float
    description: str
    dram: str
    energy: Mapping[tuple[str, str], EnergyEntry]
    leakage: Mapping[str, LeakageEntry]
    path: str = field(default="", compare=False)

    @property
    def ref(self) -> str:
        """``name vX.Y.Z (dram=...)``: what every report records."""
        return f"{self.name} v{self.version} (dram={self.dram})"

    # ---------------------------------------------------------------- lookups
    def energy_pj(self, component: str, action: str) -> float:
        try:
            return self.energy[(component, action)].energy_pj
        except KeyError:
            raise ConfigError(f"cost table {self.name} has no entry '{component}.{action}'",
                              key_path=f"{component}.{action}") from None

    def logic_pj(self, kind: str, bits: int) -> float:
        """Energy of one ``kind`` operation (add/compare/register/mul/and/shift) of ``bits`` width.

        Uses the smallest tabulated width >= bits; widths above the largest
        tabulated one scale linearly (mul: quadratically) from it.
        """
        widths = sorted(int(a[len(kind):]) for (c, a) in self.energy
                        if c == "logic" and a.startswith(kind) and a[len(kind):].isdigit())
        if not widths:
            raise ConfigError(f"cost table {self.name} has no logic entry for '{kind}'", key_path=f"logic.{kind}")
        for w in widths:
            if w >= bits:
                return self.energy[("logic", f"{kind}{w}")].energy_pj
        top = widths[-1]
        ratio = bits / top
        return self.energy[("logic", f"{kind}{top}")].energy_pj * (ratio * ratio if kind == "mul" else ratio)

    def memory_access_pj(self, component: str, action: str) -> float:
        """Energy of one access (``read``/``write``) of ``port_bytes`` of a memory."""
        return self.energy_pj(component, action)

    def memory_pj_per_byte(self, component: str, action: str) -> float:
        """Energy per byte moved, for bulk transfers (access energy / port width)."""
        e = self.energy[(component, action)] if (component, action) in self.energy else None
        if e is None:
            raise ConfigError(f"cost table {self.name} has no entry '{component}.{action}'",
                              key_path=f"{component}.{action}")
        return e.energy_pj / (e.port_bytes or 1)

    def port_bytes(self, component: str) -> int:
        e = self.energy.get((component, "read"))
        if e is None or e.port_bytes is None:
            raise ConfigError(f"cost table {self.name} gives no port_bytes for '{component}'",
                              key_path=f"{component}.read.port_bytes")
        return e.port_bytes

    @property
    def dram_pj_per_bit(self) -> float:
        return self.energy_pj("dram", self.dram)

    @property
    def dram_pj_per_byte(self) -> float:
        return 8.0 * self.dram_pj_per_bit

    def leakage_mw(self, component: str) -> float:
        try:
            return self.leakage[component].power_mw
        except KeyError:
            raise ConfigError(f"cost table {self.name} has no leakage entry '{component}'",
                              key_path=f"leakage.{component}") from None

    def dram_choices(self) -> list[str]:
        return sorted(a for (c, a) in self.energy if c == "dram")

    def energy_of(self, counts: Mapping[tuple[str, str], float]) -> float:
        """Total pJ of a set of action counts ``{(component, action): n}``."""
        return float(sum(n * self.energy_pj(c, a) for (c, a), n in counts.items()))

    def rows(self) -> list[dict]:
        """All entries as flat rows (for printing and reports)."""
        out = [dict(kind="energy", component=e.component, action=e.action, value=e.energy_pj, unit="pJ",
                    port_bytes=e.port_bytes, source=e.source) for e in self.energy.values()]
        out += [dict(kind="leakage", component=e.component, action="", value=e.power_mw, unit="mW",
                     port_bytes=None, source=e.source) for e in self.leakage.values()]
        return out


def list_cost_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


Name = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]


class _CostMeta(StrictModel):
    name: Name
    version: Name
    technology_nm: int = Field(ge=1, le=1000, description="process node of the figures")
    characterised_clock_hz: float = Field(gt=0, allow_inf_nan=False,
                                          description="clock the leakage and timing refer to")
    description: str = ""
    default_dram: Name


class _EnergyDoc(StrictModel):
    component: Name
    action: Name
    energy_pj: float = Field(ge=0, le=1e7, allow_inf_nan=False, description="pJ per action")
    source: Name
    port_bytes: int | None = Field(default=None, ge=1, le=4096,
                                   description="bytes per access (memories)")


class _LeakageDoc(StrictModel):
    component: Name
    power_mw: float = Field(ge=0, le=1e6, allow_inf_nan=False, description="static power in mW")
    source: Name


class CostDoc(StrictModel):
    """The TOML document of a cost table (types and ranges; cross-entry rules follow)."""

    meta: _CostMeta
    energy: list[_EnergyDoc] = []
    leakage: list[_LeakageDoc] = []


def _entry_at(entries: list, path: str) -> str:
    """``component.action`` of the energy entry a key path points into, if readable."""
    try:
        e = entries[int(path[len("energy["):path.index("]")])]
        return f"{e['component']}.{e['action']}"
    except (ValueError, IndexError, KeyError, TypeError):
        return ""


def costs_from_dict(data: dict, *, dram: str | None = None, source: str | None = None) -> CostTable:
    """Validate a parsed cost-table TOML document against :class:`CostDoc` and the entry rules.

    Rules beyond the schema: no duplicate ``component.action``; every memory the simulator
    charges has ``read`` and ``write`` with ``port_bytes``; every always-on component of
    :data:`LEAKAGE_COMPONENTS` has a leakage entry; the logic primitives add, compare, register
    and mul exist; the selected DRAM technology is one of the table's.
    """
    if not isinstance(data, dict):
        raise ConfigError("cost table must be a table", source=source)
    try:
        doc = CostDoc.model_validate(data)
    except ValidationError as exc:
        path, msg = one_line(exc, CostDoc)
        if path.startswith("energy[") and isinstance(data.get("energy"), list):
            entry = _entry_at(data["energy"], path)
            if entry:
                msg += f" ({entry})"
        raise ConfigError(msg, key_path=path, source=source) from None
    meta = doc.meta
    name, version, tech, clk = meta.name, meta.version, meta.technology_nm, meta.characterised_clock_hz
    default_dram = meta.default_dram
    energy: dict[tuple[str, str], EnergyEntry] = {}
    for i, e in enumerate(doc.energy):
        if (e.component, e.action) in energy:
            raise ConfigError(f"duplicate energy entry '{e.component}.{e.action}'",
                              key_path=f"energy[{i}]", source=source)
        energy[(e.component, e.action)] = EnergyEntry(e.component, e.action, e.energy_pj, e.source,
                                                      e.port_bytes)
    leakage: dict[str, LeakageEntry] = {}
    for i, e in enumerate(doc.leakage):
        if e.component in leakage:
            raise ConfigError(f"duplicate leakage entry '{e.component}'", key_path=f"leakage[{i}]",
                              source=source)
        leakage[e.component] = LeakageEntry(e.component, e.power_mw, e.source)
    for comp in MEMORY_COMPONENTS:
        for act in ("read", "write"):
            if (comp, act) not in energy:
                raise ConfigError(f"missing energy entry '{comp}.{act}'", key_path=f"energy.{comp}.{act}",
                                  source=source)
            if energy[(comp, act)].port_bytes is None:
                raise ConfigError(f"energy entry '{comp}.{act}' needs port_bytes",
                                  key_path=f"energy.{comp}.{act}.port_bytes", source=source)
    for comp in LEAKAGE_COMPONENTS:
        if comp not in leakage:
            raise ConfigError(f"missing leakage entry '{comp}' (the energy model charges "
                              f"{', '.join(LEAKAGE_COMPONENTS)})", key_path=f"leakage.{comp}",
                              source=source)
    for kind in ("add", "compare", "register", "mul"):
        if not any(c == "logic" and a.startswith(kind) for (c, a) in energy):
            raise ConfigError(f"missing logic entry for '{kind}' (e.g. '{kind}16')", key_path=f"energy.logic.{kind}",
                              source=source)
    dram_choices = sorted(a for (c, a) in energy if c == "dram")
    chosen = dram or default_dram
    if chosen not in dram_choices:
        raise ConfigError(f"DRAM '{chosen}' is not in cost table {name} (choices: {', '.join(dram_choices)})",
                          key_path="meta.default_dram", source=source)
    return CostTable(name=name, version=version, technology_nm=tech, characterised_clock_hz=clk,
                     description=meta.description, dram=chosen, energy=energy, leakage=leakage,
                     path=source or "")


def load_costs(preset_or_file: str | Path | None = None, *, dram: str | None = None) -> CostTable:
    """Load a cost table by preset name or TOML path (default ``sata28-500mhz``).

    Tables are immutable; a file is parsed again only when its modification time changes.
    """
    if preset_or_file is None:
        preset_or_file = DEFAULT_COSTS
    path = _resolve(preset_or_file)
    return _load_cached(str(path), path.stat().st_mtime_ns, dram)


def _resolve(preset_or_file: str | Path) -> Path:
    path = Path(preset_or_file)
    if not path.suffix and not path.exists():
        path = PRESET_DIR / f"{preset_or_file}.toml"
        if not path.exists():
            raise ConfigError(f"unknown cost table '{preset_or_file}' (presets: {', '.join(list_cost_presets())}; "
                              "or give a .toml file)")
    if not path.is_file():
        raise ConfigError(f"cost table file '{path}' does not exist")
    return path


@functools.lru_cache(maxsize=32)
def _load_cached(path_str: str, mtime_ns: int, dram: str | None) -> CostTable:
    path = Path(path_str)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=str(path)) from None
    return costs_from_dict(data, dram=dram, source=str(path))


def default_costs() -> CostTable:
    return load_costs(DEFAULT_COSTS)
