"""The one hardware description shared by compiler, hwsim and rtl.

A :class:`HardwareConfig` is a frozen, keyword-only dataclass tree loaded from
a TOML preset (``atsnn/presets/hw/*.toml``) or a user file. Every width, size,
cycle cost and clock used anywhere in the package comes from here; no other
module restates one of these numbers. The default preset ``atsnn28`` is the
paper's design (seed 001 sec. 2.4: 16x16 array = 255 PEs + 1 AT unit, 128 B
spike buffers, 1 KB PE / 3 KB AT data memory, 28 nm, 500 MHz, 4 accelerators
in parallel). The widths and the hierarchy above the PEs are not fixed by the
paper; ``docs/hardware.md`` documents the chosen defaults and why.

Validation raises :class:`atsnn.errors.ConfigError` naming the key path, the
bad value and the allowed range.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from atsnn.errors import ConfigError
from atsnn.schema import StrictModel, one_line

PRESET_DIR = Path(__file__).parent / "presets" / "hw"
#: the simulator holds accumulator sums in float32, exact for magnitudes below 2**EXACT_SUM_BITS;
#: so the widest accumulator a preset may declare is EXACT_SUM_BITS bits (signed)
EXACT_SUM_BITS = 24
DEFAULT_PRESET = "atsnn28"


def _f(lo, hi, doc):
    """A field with its allowed closed range [lo, hi] and a one-line description.

    The type (integer or finite number) is the field's annotation; validation is strict.
    """
    return Field(ge=lo, le=hi, description=doc, allow_inf_nan=False)


class ArrayConfig(StrictModel):
    """The PE array: ``rows x cols`` tiles, of which ``at_units`` are AT units."""

    rows: int = _f(1, 64, "tile rows of the array")
    cols: int = _f(1, 64, "tile columns of the array")
    at_units: int = _f(1, 1, "adaptive-timestep units (the output layer); exactly one is supported")

    @property
    def tiles(self) -> int:
        return self.rows * self.cols

    @property
    def pe_count(self) -> int:
        """Number of processing elements (tiles that are not AT units)."""
        return self.rows * self.cols - self.at_units


class PeConfig(StrictModel):
    """One processing element (seed 001 Fig. 2c)."""

    input_spike_buffer_bytes: int = _f(8, 65536, "input spike (event) buffer per PE")
    output_spike_buffer_bytes: int = _f(8, 65536, "output spike buffer per PE (one bit per neuron)")
    data_memory_bytes: int = _f(64, 1 << 20, "PE data memory: membranes, accumulators, resident weights")
    data_memory_port_bytes: int = _f(1, 64, "bytes per PE data memory access")
    spike_buffer_port_bytes: int = _f(1, 64, "bytes per spike buffer access")


class AtConfig(StrictModel):
    """The adaptive-timestep unit: output integrator plus exit test (seed 001 eq. 8, 17-18)."""

    input_spike_buffer_bytes: int = _f(8, 65536, "input spike buffer of the AT unit")
    output_spike_buffer_bytes: int = _f(8, 65536, "output buffer of the AT unit")
    data_memory_bytes: int = _f(64, 1 << 20, "AT data memory: membranes, weights, exp table")
    data_memory_port_bytes: int = _f(1, 64, "bytes per AT data memory access")
    membrane_bits: int = _f(8, 32, "width of the output integrator's membrane (saturating)")
    exp_table_entries: int = _f(4, 4096, "entries of the stored exp(-x) table")
    exp_table_value_bits: int = _f(8, 24, "unsigned width of an exp table entry; 1.0 = 2**(bits-1)")
    exp_input_range: float = _f(1.0, 64.0, "x range covered by the table, exp(-x) for x in [0, range]")
    exp_index_frac_bits: int = _f(0, 16, "fraction bits of the table index used for linear interpolation")
    exp_scale_bits: int = _f(4, 24, "fraction bits of the membrane-to-index multiplier")
    cl_frac_bits: int = _f(8, 24, "fraction bits of CL_init, tau_CL and the running CL_t product")


class NumericConfig(StrictModel):
    """Fixed-point widths of the numeric contract (docs/hardware.md sec. 2)."""

    weight_bits: int = _f(2, 16, "signed synaptic weight width")
    membrane_bits: int = _f(4, 32, "signed PE membrane width (saturating)")
    accumulator_bits: int = _f(8, EXACT_SUM_BITS, "signed per-neuron input-current accumulator width")
    threshold_bits: int = _f(2, 32, "unsigned threshold width; must not exceed membrane_bits - 1")
    bias_bits: int = _f(2, 32, "signed bias width, added once per timestep")
    input_bits: int = _f(1, 16, "unsigned width of first-layer multi-bit input values (bit-serial)")
    event_bytes: int = _f(1, 8, "bytes of one address event on the spike bus and in buffers")
    psn_tap_bits: int = _f(2, 16, "signed width of a sliding-PSN tap weight (docs/hardware.md sec. 11)")
    psn_max_taps: int = _f(1, 64, "most taps k of a sliding PSN (history registers per neuron: k - 1)")


class CycleConfig(StrictModel):
    """Per-operation cycle costs (docs/hardware.md sec. 5)."""

    event: int = _f(0, 64, "cycles to take one event from the bus into every PE")
    synop: int = _f(1, 64, "cycles per synaptic accumulation (weight read + accumulate)")
    update: int = _f(1, 64, "cycles per neuron update (leak, add, saturate, compare, reset)")
    layer_overhead: int = _f(0, 4096, "fixed cycles per layer-timestep (barrier, configuration)")
    at_update: int = _f(1, 64, "cycles per output-neuron update in the AT unit")
    at_exp: int = _f(1, 64, "cycles per class for the exp-table evaluation with interpolation")
    at_decision: int = _f(1, 64, "cycles per timestep for the CL_t update and the exit compare")
    psn_tap: int = _f(1, 64, "cycles per tap of a sliding-PSN update (one multiply-accumulate)")


class MemoryConfig(StrictModel):
    """The hierarchy above the PEs (not fixed by the paper; docs/hardware.md sec. 6)."""

    glb_banks: int = _f(1, 1024, "global buffer banks")
    glb_bank_bytes: int = _f(1024, 1 << 26, "bytes per global buffer bank")
    glb_port_bytes: int = _f(1, 256, "bytes per global buffer access")
    glb_bandwidth_bytes_per_cycle: int = _f(1, 4096, "global buffer <-> PE bandwidth")
    dram_bandwidth_bytes_per_cycle: float = _f(0.1, 4096.0, "DRAM <-> global buffer bandwidth")

    @property
    def glb_bytes(self) -> int:
        return self.glb_banks * self.glb_bank_bytes


class SystemConfig(StrictModel):
    clock_hz: float = _f(1e6, 1e10, "clock frequency in Hz")
    accelerators: int = _f(1, 1024, "identical accelerators running in parallel, each on its own images")
    technology_nm: int = _f(3, 250, "process node the cost table should match")


class _Sections(StrictModel):
    """The sections of a hardware description, shared by the document and the loaded config."""

    array: ArrayConfig
    pe: PeConfig
    at: AtConfig
    numeric: NumericConfig
    cycles: CycleConfig
    memory: MemoryConfig
    system: SystemConfig


class HardwareConfig(_Sections):
    """Everything the compiler, simulator and RTL need to know about the hardware."""

    name: str
    description: str = ""

    # ---- derived quantities (computed, never stored in a second place) ----
    @property
    def pe_count(self) -> int:
        return self.array.pe_count

    @property
    def clock_period_s(self) -> float:
        return 1.0 / self.system.clock_hz

    @property
    def membrane_min(self) -> int:
        return -(1 << (self.numeric.membrane_bits - 1))

    @property
    def membrane_max(self) -> int:
        return (1 << (self.numeric.membrane_bits - 1)) - 1

    @property
    def at_membrane_min(self) -> int:
        return -(1 << (self.at.membrane_bits - 1))

    @property
    def at_membrane_max(self) -> int:
        return (1 << (self.at.membrane_bits - 1)) - 1

    @property
    def weight_min(self) -> int:
        return -(1 << (self.numeric.weight_bits - 1))

    @property
    def weight_max(self) -> int:
        return (1 << (self.numeric.weight_bits - 1)) - 1

    @property
    def accumulator_min(self) -> int:
        return -(1 << (self.numeric.accumulator_bits - 1))

    @property
    def accumulator_max(self) -> int:
        return (1 << (self.numeric.accumulator_bits - 1)) - 1

    @property
    def bias_min(self) -> int:
        return -(1 << (self.numeric.bias_bits - 1))

    @property
    def bias_max(self) -> int:
        return (1 << (self.numeric.bias_bits - 1)) - 1

    @property
    def threshold_max(self) -> int:
        return (1 << self.numeric.threshold_bits) - 1

    @property
    def input_max(self) -> int:
        return (1 << self.numeric.input_bits) - 1

    @property
    def max_leak_shift(self) -> int:
        """Largest leak shift k (leak = v >> k); 0 means no leak."""
        return self.numeric.membrane_bits - 1

    @property
    def exp_one(self) -> int:
        """The exp table's integer encoding of 1.0."""
        return 1 << (self.at.exp_table_value_bits - 1)

    @property
    def cl_one(self) -> int:
        return 1 << self.at.cl_frac_bits

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def replace(self, **sections: dict[str, Any]) -> "HardwareConfig":
        """Return a copy with some fields of some sections changed, validated.

        ``cfg.replace(array={"rows": 4, "cols": 4})``.
        """
        data = self.to_dict()
        for sec, values in sections.items():
            if isinstance(values, dict):
                data[sec] = {**data[sec], **values}
            else:
                data[sec] = values
        return hardware_from_dict(data, source=f"{self.name} (modified)")


#: section name -> its model, in document order (declared once, by :class:`_Sections`)
_SECTIONS = {name: f.annotation for name, f in _Sections.model_fields.items()}


class _MetaDoc(StrictModel):
    name: str = Field(min_length=1, description="preset name recorded in every report")
    description: str = ""


class HardwareDoc(_Sections):
    """The TOML document of a hardware description: ``[meta]`` and one table per section."""

    meta: _MetaDoc


def hardware_from_dict(data: dict[str, Any], *, source: str | None = None) -> HardwareConfig:
    """Build and validate a :class:`HardwareConfig` from a nested dict (parsed TOML).

    The schema is :class:`HardwareDoc` (types and ranges of every key); the rules that involve
    several keys follow in :func:`_check_cross`. ``name`` and ``description`` may also stand at
    the top level instead of under ``[meta]`` (as :meth:`HardwareConfig.to_dict` writes them).
    """
    if not isinstance(data, dict):
        raise ConfigError("hardware description must be a table", source=source)
    doc = dict(data)
    meta = doc.get("meta", {})
    if isinstance(meta, dict) and ("name" in doc or "description" in doc):
        meta = {**meta, **{k: doc.pop(k) for k in ("name", "description") if k in doc}}
        doc["meta"] = meta
    try:
        parsed = HardwareDoc.model_validate(doc)
    except ValidationError as exc:
        path, msg = one_line(exc, HardwareDoc)
        raise ConfigError(msg, key_path=path, source=source) from None
    cfg = HardwareConfig(name=parsed.meta.name, description=parsed.meta.description,
                         **{sec: getattr(parsed, sec) for sec in _SECTIONS})
    _check_cross(cfg, source)
    return cfg


def _check_cross(cfg: HardwareConfig, source: str | None) -> None:
    """Constraints that involve more than one key."""
    n = cfg.numeric
    if cfg.array.pe_count < 1:
        raise ConfigError("key 'array.rows' x 'array.cols' must leave at least one PE besides the AT unit",
                          key_path="array.rows", source=source)
    if n.threshold_bits > n.membrane_bits - 1:
        raise ConfigError(f"key 'numeric.threshold_bits' = {n.threshold_bits} must be <= membrane_bits - 1 "
                          f"= {n.membrane_bits - 1}", key_path="numeric.threshold_bits", source=source)
    if n.accumulator_bits < n.weight_bits + n.input_bits:
        raise ConfigError(f"key 'numeric.accumulator_bits' = {n.accumulator_bits} must be >= weight_bits + "
                          f"input_bits = {n.weight_bits + n.input_bits}",
                          key_path="numeric.accumulator_bits", source=source)
    if n.bias_bits > n.accumulator_bits:
        raise ConfigError(f"key 'numeric.bias_bits' = {n.bias_bits} must be <= accumulator_bits "
                          f"= {n.accumulator_bits}", key_path="numeric.bias_bits", source=source)
    if cfg.at.membrane_bits < n.membrane_bits:
        raise ConfigError(f"key 'at.membrane_bits' = {cfg.at.membrane_bits} must be >= numeric.membrane_bits "
                          f"= {n.membrane_bits}", key_path="at.membrane_bits", source=source)
    table_bytes = cfg.at.exp_table_entries * math.ceil(cfg.at.exp_table_value_bits / 8)
    if table_bytes > cfg.at.data_memory_bytes // 2:
        raise ConfigError(f"key 'at.exp_table_entries' = {cfg.at.exp_table_entries} needs {table_bytes} B, more "
                          f"than half of at.data_memory_bytes = {cfg.at.data_memory_bytes}",
                          key_path="at.exp_table_entries", source=source)


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_hardware(preset_or_file: str | Path | None = None) -> HardwareConfig:
    """Load a hardware description by preset name or TOML path (default: ``atsnn28``)."""
    if preset_or_file is None:
        preset_or_file = DEFAULT_PRESET
    path = Path(preset_or_file)
    if not path.suffix and not path.exists():
        path = PRESET_DIR / f"{preset_or_file}.toml"
        if not path.exists():
            raise ConfigError(f"unknown hardware preset '{preset_or_file}' (presets: {', '.join(list_presets())}; "
                              "or give a .toml file)")
    if not path.is_file():
        raise ConfigError(f"hardware file '{path}' does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=str(path)) from None
    return hardware_from_dict(data, source=str(path))


def default_hardware() -> HardwareConfig:
    return load_hardware(DEFAULT_PRESET)


def hardware_to_toml(cfg: HardwareConfig) -> str:
    """Serialise a config back to TOML text (round-trips through :func:`hardware_from_dict`)."""
    lines = ["[meta]", f"name = {_toml_value(cfg.name)}", f"description = {_toml_value(cfg.description)}"]
    for sec, cls in _SECTIONS.items():
        lines.append("")
        lines.append(f"[{sec}]")
        obj = getattr(cfg, sec)
        for fname, info in cls.model_fields.items():
            lines.append(f"{fname} = {_toml_value(getattr(obj, fname))}  # {info.description}")
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'
