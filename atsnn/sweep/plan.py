"""Expanding a sweep spec into points and the jobs that compute them, with content-hash keys.

A *point* is one row of the result table: a model, a hardware variant, a cost table with one
DRAM model, a T and an exit policy with its parameters. Jobs are shared between points so no
work is repeated:

- one :class:`TopologyJob` per (topology, seed) model source: its NIR file, built once;
- one :class:`CompileJob` per (model, hardware): the compiled Program;
- exact mode: one :class:`UnitJob` per (program, data, T, cost table, DRAM) runs the cycle
  simulation once and evaluates every policy point of it from that one trace (the simulator
  charges energy per action while it runs, so the cost table is part of the simulation);
- analytic mode: one :class:`RatesJob` per (program, data) measures the firing rates, then one
  :class:`UnitJob` per (T, cost table, DRAM) evaluates the estimate (fixed T only: the analytic
  mode has no exit policy).

Every key is a SHA-256 over the canonical JSON of the job's inputs: the model file's content
hash (or a topology's name and seed), the full hardware dictionary, the cost table's content
hash and DRAM model, the data (name, or an .npz file's content hash, and the sample count),
T, the policy and its parameters, and the atsnn version. Labels are not inputs: renaming a
model or a variant reuses its stored points. Each stored point also records a fingerprint of
the code that computed it (:func:`code_fingerprint`); :mod:`atsnn.sweep.run` computes a point
again when the code has changed since (e.g. a development checkout between two runs), so a
store never serves figures of other code under the same version.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atsnn.sweep.spec import ANALYTIC_DEFAULT_SAMPLES, SpecError, SweepSpec, load_spec, model_stem

#: built-in data sets of :func:`atsnn.hwsim.datasets.load_data`
BUILTIN_DATA = ("digits", "digits-seq", "synthetic")
#: version of the point records; part of every key
KEY_FORMAT = 1


#: packages whose code computes a point's figures (all their .py files are fingerprinted)
CODE_PACKAGES = ("atsnn", "atsnn.compiler", "atsnn.hwsim")
#: the modules of ``atsnn.workloads`` (folder ``workloads/``) a point's figures depend on (data, topologies)
CODE_MODULES = ("workloads/__init__.py", "workloads/digits.py", "workloads/topologies.py")
#: modules of those packages that only present results (not part of the fingerprint)
PRESENTATION_ONLY = ("atsnn/cli.py", "atsnn/report/", "atsnn/sweep/cli.py",
                     "atsnn/sweep/pareto.py", "atsnn/sweep/run.py", "atsnn/sweep/store.py")


@functools.lru_cache(maxsize=1)
def worker_code_fingerprint() -> str:
    """:func:`code_fingerprint` computed once per process: on a worker, of the code it loaded
    at its first job (a long-lived worker keeps its answer when the files change later)."""
    return code_fingerprint()


def code_fingerprint() -> str:
    """Hex SHA-256 over the relative paths and bytes of the ``.py`` files of
    :data:`CODE_PACKAGES` (less :data:`PRESENTATION_ONLY`) and of :data:`CODE_MODULES`, as
    they are on disk now.

    Recorded with every stored point, so a changed compiler or simulator never serves stale
    points, and checked on the workers, so one that runs other code than the plan was made
    for is detected (:func:`worker_code_fingerprint`)."""
    import importlib
    files: list[tuple[str, Path]] = []
    for pkg in CODE_PACKAGES:
        root = Path(importlib.import_module(pkg).__file__).parent
        files += [(f"{root.name}/{f.relative_to(root).as_posix()}", f) for f in root.rglob("*.py")]
    base = Path(importlib.import_module("atsnn.workloads").__file__).parent.parent
    files += [(rel, base / rel) for rel in CODE_MODULES]
    h = hashlib.sha256()
    for rel, f in sorted(files):
        if any(rel == x or (x.endswith("/") and rel.startswith(x)) for x in PRESENTATION_ONLY):
            continue
        h.update(rel.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def digest(obj: Any) -> str:
    """128-bit hex SHA-256 of the canonical JSON of ``obj`` (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_models_dir() -> Path:
    """Directory of the NIR models shipped with the package (``workloads/models``)."""
    import atsnn.workloads
    return Path(atsnn.workloads.__file__).parent / "models"


def shipped_model_names() -> list[str]:
    return sorted(p.stem for p in shipped_models_dir().glob("*.nir"))


@dataclass(frozen=True)
class DataRef:
    """The data a model runs on: a built-in name or an .npz file (with its content hash)."""

    label: str  # as written in the spec
    spec: str  # built-in name or absolute path, as given to atsnn.hwsim.datasets.load_data
    sha256: str | None  # content hash of an .npz file
    samples: int | None  # first N samples (None: all)

    def identity(self) -> dict[str, Any]:
        what = {"file_sha256": self.sha256} if self.sha256 else {"builtin": self.spec}
        return {**what, "samples": self.samples}


@dataclass(frozen=True)
class ModelRef:
    """One model of the spec, resolved: a NIR file with its content hash, or a topology."""

    index: int
    label: str
    source: str  # as written in the spec
    kind: str  # "file" | "topology"
    path: str | None  # absolute NIR path (kind "file")
    sha256: str | None  # content hash of the NIR file
    topology: str | None
    seed: int
    mode: str  # "exact" | "analytic"
    data: DataRef
    input_max: float | None
    measure_T: int
    rate: float | None
    timesteps: tuple[int, ...]

    def identity(self) -> dict[str, Any]:
        """What the compiled program depends on besides the hardware."""
        src = ({"file_sha256": self.sha256} if self.kind == "file"
               else {"topology": self.topology, "seed": self.seed})
        return {"source": src, "input_max": self.input_max}


@dataclass(frozen=True, eq=False)
class HardwareRef:
    """One hardware point: its label, the overrides that made it and the validated dictionary."""

    label: str
    overrides: tuple[tuple[str, Any], ...]
    hw: dict[str, Any]  # HardwareConfig.to_dict() of the validated description


@dataclass(frozen=True)
class CostRef:
    """A cost table with one DRAM model; its TOML text travels to the workers."""

    name: str  # as written in the spec
    toml_text: str
    sha256: str
    dram: str  # the selected DRAM model
    ref: str  # CostTable.ref: "name vX (dram=...)"

    def identity(self) -> dict[str, Any]:
        return {"table_sha256": self.sha256, "dram": self.dram}


@dataclass
class Point:
    """One row of the table: its key, the unit that computes it and its axis values."""

    key: str
    unit_key: str
    policy: str
    params: dict[str, float]
    axes: dict[str, Any]


@dataclass
class TopologyJob:
    """A topology source (``atsnn topology NAME --seed SEED``), built once for its compiles."""

    key: str
    name: str
    seed: int


@dataclass
class CompileJob:
    key: str
    model: ModelRef
    hardware: HardwareRef
    code: str  # code_fingerprint() of the planning process; a worker must run the same code
    topology_key: str | None = None  # the TopologyJob that provides the NIR file


@dataclass
class RatesJob:
    """Analytic mode: firing rates of one program on its data (or the spec's uniform rate)."""

    key: str
    compile_key: str
    model: ModelRef


@dataclass
class UnitJob:
    """One simulation (exact) or one estimate (analytic) and the points evaluated from it."""

    key: str
    kind: str  # "exact" | "analytic"
    compile_key: str
    rates_key: str | None
    T: int
    cost: CostRef
    data: DataRef
    points: list[Point] = field(default_factory=list)


@dataclass
class Plan:
    """Every point of a spec in table order, and the jobs that compute them."""

    spec_path: str
    name: str
    description: str
    points: list[Point]
    topologies: dict[str, TopologyJob]
    compiles: dict[str, CompileJob]
    rates: dict[str, RatesJob]
    units: dict[str, UnitJob]
    hw_columns: list[str]  # override key paths, each a "hw.<key>" column
    input_paths: list[str]  # files the sweep reads (the output may not hold them)
    code: str  # code_fingerprint() when the plan was made

    def subset(self, keys: set[str]) -> "Plan":
        """The jobs needed for the points in ``keys`` only (units keep only those points)."""
        units: dict[str, UnitJob] = {}
        for p in self.points:
            if p.key in keys:
                u = self.units[p.unit_key]
                if u.key not in units:
                    units[u.key] = UnitJob(key=u.key, kind=u.kind, compile_key=u.compile_key,
                                           rates_key=u.rates_key, T=u.T, cost=u.cost, data=u.data)
                units[u.key].points.append(p)
        compiles = {u.compile_key: self.compiles[u.compile_key] for u in units.values()}
        rates = {u.rates_key: self.rates[u.rates_key] for u in units.values() if u.rates_key}
        topologies = {c.topology_key: self.topologies[c.topology_key] for c in compiles.values()
                      if c.topology_key}
        return Plan(spec_path=self.spec_path, name=self.name, description=self.description,
                    points=[p for p in self.points if p.key in keys], topologies=topologies,
                    compiles=compiles,
                    rates=rates, units=units, hw_columns=self.hw_columns,
                    input_paths=self.input_paths, code=self.code)


# ------------------------------------------------------------------ resolution
def _resolve_model(i: int, m, spec_dir: Path, src: str) -> tuple[str, str | None, str | None]:
    """(kind, absolute path or None, topology or None) of ``models[i].source``."""
    cand = Path(m.source) if Path(m.source).is_absolute() else spec_dir / m.source
    if cand.is_file():
        return "file", str(cand.resolve()), None
    if cand.exists():
        raise SpecError(f"{src}: key 'models[{i}].source': '{m.source}' is a directory, "
                        "not a NIR file")
    shipped = shipped_models_dir() / f"{m.source}.nir"
    if shipped.is_file():
        return "file", str(shipped), None
    from atsnn.workloads.topologies import TOPOLOGIES
    if m.source in TOPOLOGIES:
        return "topology", None, m.source
    if "/" in m.source or Path(m.source).suffix:
        raise SpecError(f"{src}: key 'models[{i}].source': model file '{cand}' does not exist")
    raise SpecError(f"{src}: key 'models[{i}].source': '{m.source}' is not a NIR file, a shipped "
                    f"model ({', '.join(shipped_model_names())}) or a topology "
                    f"({', '.join(TOPOLOGIES)})")


def _resolve_data(i: int, m, spec_dir: Path, src: str, samples: int | None) -> DataRef:
    if m.data in BUILTIN_DATA:
        return DataRef(label=m.data, spec=m.data, sha256=None, samples=samples)
    p = Path(m.data) if Path(m.data).is_absolute() else spec_dir / m.data
    if not p.is_file():
        raise SpecError(f"{src}: key 'models[{i}].data': '{m.data}' is not "
                        f"{', '.join(BUILTIN_DATA)} or an existing .npz file ('{p}')")
    return DataRef(label=m.data, spec=str(p.resolve()), sha256=file_sha256(p), samples=samples)


def _flatten(prefix: str, obj: Any, *, leaf_list: bool) -> list[tuple[str, Any]]:
    """Dotted key paths of a nested table (TOML ``a.b = 1`` and ``"a.b" = 1`` alike).

    With ``leaf_list`` a list ends a path (grid values); otherwise only non-tables do."""
    if isinstance(obj, dict):
        out: list[tuple[str, Any]] = []
        for k, v in obj.items():
            out += _flatten(f"{prefix}.{k}" if prefix else str(k), v, leaf_list=leaf_list)
        return out
    return [(prefix, obj)]


def apply_overrides(base: dict[str, Any], overrides: list[tuple[str, Any]], where: str) -> dict:
    """A deep copy of ``base`` with each ``key.path = value`` set; :class:`SpecError` when a path
    runs through a value that is not a table. Unknown keys are left for the hardware schema."""
    import copy
    data = copy.deepcopy(base)
    for path, value in overrides:
        parts = path.split(".")
        if not all(parts):
            raise SpecError(f"{where}: '{path}' is not a key path (e.g. \"array.rows\")")
        cur = data
        for j, part in enumerate(parts[:-1]):
            nxt = cur.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise SpecError(f"{where}: key '{'.'.join(parts[:j + 1])}' is a value, not a "
                                f"table; '{path}' cannot be set")
            cur = nxt
        cur[parts[-1]] = value
    return data


def _hardware_points(spec: SweepSpec, spec_dir: Path, src: str) -> list[HardwareRef]:
    from atsnn.config import hardware_from_dict, load_hardware
    from atsnn.errors import ConfigError

    base_arg = spec.hardware.base
    cand = Path(base_arg) if Path(base_arg).is_absolute() else spec_dir / base_arg
    try:
        base = load_hardware(cand if cand.is_file() else base_arg)
    except ConfigError as exc:
        raise SpecError(f"{src}: key 'hardware.base': {exc}") from None
    base_dict = base.to_dict()
    grid = _flatten("", spec.hardware.grid, leaf_list=True)
    for key, vals in grid:
        if not isinstance(vals, list) or not vals:
            raise SpecError(f"{src}: key 'hardware.grid.{key}' must be a non-empty array of "
                            f"values (e.g. [4, 8]), not {vals!r}")
    combos = list(itertools.product(*[vals for _, vals in grid])) if grid else [()]
    out: list[HardwareRef] = []
    seen: dict[str, str] = {}
    for vi, var in enumerate(spec.hardware.variants):
        sets = _flatten("", var.set, leaf_list=False)
        for combo in combos:
            over = sets + [(k, v) for (k, _), v in zip(grid, combo)]
            grid_text = ", ".join(f"{k}={v}" for (k, _), v in zip(grid, combo))
            where = f"{src}: hardware.variants[{vi}]" + (f" with {grid_text}" if combo else "")
            data = apply_overrides(base_dict, over, where)
            try:
                hw = hardware_from_dict(data, source=where)
            except ConfigError as exc:
                raise SpecError(str(exc)) from None
            parts = [var.label or ",".join(f"{k}={v}" for k, v in sets),
                     ",".join(f"{k}={v}" for (k, _), v in zip(grid, combo))]
            label = ",".join(x for x in parts if x) or "base"
            hw_dict = hw.to_dict()
            hkey = digest(hw_dict)
            if hkey in seen:
                raise SpecError(f"{where} gives the same hardware as {seen[hkey]}; remove one")
            seen[hkey] = where.split(": ", 1)[1]
            out.append(HardwareRef(label=label, overrides=tuple(over), hw=hw_dict))
    labels = [h.label for h in out]
    dup = next((lab for j, lab in enumerate(labels) if lab in labels[:j]), None)
    if dup is not None:
        raise SpecError(f"{src}: key 'hardware.variants': two hardware points are labelled "
                        f"'{dup}'; give the variants distinct labels")
    return out


def _cost_points(spec: SweepSpec, spec_dir: Path, src: str) -> tuple[list[CostRef], list[str]]:
    from atsnn.costs import load_costs
    from atsnn.errors import ConfigError

    out: list[CostRef] = []
    paths: list[str] = []
    for ci, name in enumerate(spec.axes.costs):
        cand = Path(name) if Path(name).is_absolute() else spec_dir / name
        arg = str(cand) if cand.is_file() else name
        try:
            default = load_costs(arg)
        except ConfigError as exc:
            raise SpecError(f"{src}: key 'axes.costs[{ci}]': {exc}") from None
        if cand.is_file():
            paths.append(str(cand.resolve()))
        text = Path(default.path).read_text(encoding="utf-8")
        sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        for di, dram in enumerate(spec.axes.dram or [None]):
            if dram is not None and dram not in default.dram_choices():
                raise SpecError(f"{src}: key 'axes.dram[{di}]': DRAM '{dram}' is not in cost "
                                f"table {default.name} (choices: "
                                f"{', '.join(default.dram_choices())})")
            table = load_costs(arg, dram=dram)
            out.append(CostRef(name=name, toml_text=text, sha256=sha, dram=table.dram,
                               ref=table.ref))
    return out, paths


def build_plan(spec: SweepSpec, spec_path: str | Path) -> Plan:
    """All points of ``spec`` (read from ``spec_path``; relative paths are relative to its
    directory) in table order and their jobs; :class:`SpecError` for a missing file, an
    unknown model, data set, cost table or DRAM model, or an invalid hardware override."""
    from atsnn import __version__

    src = str(spec_path)
    spec_dir = Path(spec_path).resolve().parent
    hardware = _hardware_points(spec, spec_dir, src)
    costs, cost_paths = _cost_points(spec, spec_dir, src)
    hw_columns: list[str] = []
    for h in hardware:
        for k, _ in h.overrides:
            if k not in hw_columns:
                hw_columns.append(k)
    inputs = [str(Path(spec_path).resolve())] + cost_paths
    base = Path(spec.hardware.base)
    base = base if base.is_absolute() else spec_dir / base
    if base.is_file():
        inputs.append(str(base.resolve()))
    models: list[ModelRef] = []
    for i, m in enumerate(spec.models):
        kind, path, topo = _resolve_model(i, m, spec_dir, src)
        samples = m.samples
        if m.mode == "analytic" and samples is None and m.rate is None:
            samples = ANALYTIC_DEFAULT_SAMPLES
        data = _resolve_data(i, m, spec_dir, src, samples)
        if path:
            inputs.append(path)
        if data.sha256:
            inputs.append(data.spec)
        models.append(ModelRef(index=i, label=m.name or model_stem(m.source), source=m.source,
                               kind=kind, path=path, sha256=file_sha256(path) if path else None,
                               topology=topo, seed=m.seed, mode=m.mode, data=data,
                               input_max=m.input_max, measure_T=m.measure_T, rate=m.rate,
                               timesteps=tuple(m.T or spec.axes.T)))
    code = code_fingerprint()
    topologies: dict[str, TopologyJob] = {}
    compiles: dict[str, CompileJob] = {}
    rates: dict[str, RatesJob] = {}
    units: dict[str, UnitJob] = {}
    points: list[Point] = []
    for m in models:
        for h in hardware:
            ck = digest({"format": KEY_FORMAT, "atsnn": __version__, "model": m.identity(),
                         "hardware": h.hw})
            tk = None
            if m.kind == "topology":
                tk = digest({"atsnn": __version__, "topology": m.topology, "seed": m.seed})
                topologies.setdefault(tk, TopologyJob(key=tk, name=m.topology, seed=m.seed))
            compiles.setdefault(ck, CompileJob(key=ck, model=m, hardware=h, code=code,
                                               topology_key=tk))
            rk = None
            if m.mode == "analytic":
                data_id = None if m.rate is not None else m.data.identity()
                rk = digest({"compile": ck, "data": data_id, "measure_T": m.measure_T,
                             "rate": m.rate})
                rates.setdefault(rk, RatesJob(key=rk, compile_key=ck, model=m))
            for c in costs:
                for T in m.timesteps:
                    uk = digest({"mode": m.mode, "compile": ck, "rates": rk, "T": T,
                                 "data": m.data.identity(), "costs": c.identity()})
                    unit = units.setdefault(uk, UnitJob(key=uk, kind=m.mode, compile_key=ck,
                                                        rates_key=rk, T=T, cost=c, data=m.data))
                    policies = ([("fixed", {})] if m.mode == "analytic" else
                                [(pol.policy, params) for pol in spec.axes.policies
                                 for params in pol.combinations()])
                    for policy, params in policies:
                        pk = digest({"unit": uk, "policy": policy, "params": params})
                        if any(p.key == pk for p in unit.points):
                            continue  # the same policy point listed twice in the spec
                        axes = _axes(m, h, c, T, policy, params, hw_columns)
                        point = Point(key=pk, unit_key=uk, policy=policy, params=params, axes=axes)
                        unit.points.append(point)
                        points.append(point)
    return Plan(spec_path=src, name=spec.name, description=spec.description, points=points,
                topologies=topologies, compiles=compiles, rates=rates, units=units,
                hw_columns=hw_columns, input_paths=inputs, code=code)


def _hw_value(hw: dict[str, Any], path: str) -> Any:
    cur: Any = hw
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _axes(m: ModelRef, h: HardwareRef, c: CostRef, T: int, policy: str, params: dict,
          hw_columns: list[str]) -> dict[str, Any]:
    """The axis columns of one point (labels and values, in table order)."""
    axes: dict[str, Any] = dict(model=m.label, source=m.source, mode=m.mode, data=m.data.label,
                                samples=m.data.samples, hardware=h.label)
    for k in hw_columns:
        axes[f"hw.{k}"] = _hw_value(h.hw, k)
    axes.update(costs=c.name, cost_table=c.ref, dram=c.dram, T=T, policy=policy,
                theta=params.get("theta"), cl_init=params.get("cl_init"),
                tau_cl=params.get("tau_cl"))
    return axes


def plan_from_file(spec_path: str | Path) -> Plan:
    """:func:`load_spec` then :func:`build_plan`."""
    return build_plan(load_spec(spec_path), spec_path)


__all__ = ["CompileJob", "TopologyJob", "CostRef", "DataRef", "HardwareRef", "ModelRef", "Plan",
           "Point", "RatesJob", "UnitJob", "build_plan", "digest", "plan_from_file"]
