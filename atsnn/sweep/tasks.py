"""The functions the Dask workers run: compile, measure rates, simulate or estimate.

Each takes only picklable plan objects (:mod:`atsnn.sweep.plan`) and the results of the jobs
it depends on, and returns a small result object. A user error of one job
(:class:`atsnn.errors.AtsnnError`: a model that does not compile, data of the wrong shape, a
policy the program cannot run) is *returned* as a one-line message, so it becomes the error
column of the affected points and is stored like any result; the job is not retried. Any
other exception propagates, Dask retries the job, and a job that still fails leaves its points
uncomputed (they are reported in the table but not stored, so a re-run tries them again).

The computations are exactly those of ``atsnn compile`` + ``atsnn simulate`` (exact mode) and
``atsnn estimate`` (analytic mode), so a point's figures equal a one-by-one run's.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atsnn.errors import AtsnnError
from atsnn.sweep.plan import CostRef, DataRef, ModelRef, Point


class InputChangedError(RuntimeError):
    """A model or data file on the worker differs from the one the sweep was planned with
    (or is not visible there); not a result, so the job is retried and not stored."""


@dataclass
class Compiled:
    """Outcome of one compile job: the Program, or the one-line error."""

    program: Any | None
    error: str | None
    memory_fit: str | None
    seconds: float


@dataclass
class Rates:
    """Outcome of one analytic rates job: rates per spiking layer and input events per step."""

    rates: dict[str, float] | None
    input_events_per_timestep: float | None
    note: str | None
    samples_run: int | None
    error: str | None
    seconds: float


@dataclass
class UnitOutcome:
    """Figures of every point of one unit (point key -> figure dict), and where it ran."""

    figures: dict[str, dict[str, Any]]
    seconds: float
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def memory_fit(program) -> str:
    """Where the program's data lives: ``on-chip`` (every layer's weights and state stay in the
    PE / AT memories), ``glb`` (some stream through the global buffer) or ``dram`` (some
    weights, state or spike maps live in DRAM)."""
    maps = [layer.mapping for layer in program.layers]
    if any(m.weights_in_dram or m.state_in_dram or m.spikes_in_dram for m in maps):
        return "dram"
    if any(not m.weights_resident or not m.state_resident for m in maps):
        return "glb"
    return "on-chip"


def _check_file(path: str, sha256: str, what: str) -> None:
    from atsnn.sweep.plan import file_sha256
    try:
        found = file_sha256(path)
    except OSError as exc:
        raise InputChangedError(f"{what} '{path}' cannot be read on worker {socket.gethostname()}"
                                f" ({exc.strerror or exc}); workers need the spec's files at the"
                                " same paths") from None
    if found != sha256:
        raise InputChangedError(f"{what} '{path}' changed since the sweep was planned")


def topology_task(name: str, seed: int) -> bytes:
    """The NIR file ``atsnn topology NAME --seed SEED`` writes, as bytes (built once per sweep
    and handed to every compile of that topology)."""
    from atsnn.compiler.nir_export import export_nir
    from atsnn.workloads.topologies import build
    with tempfile.TemporaryDirectory(prefix="atsnn-sweep-") as tmp:
        path = Path(tmp) / f"{name}.nir"
        export_nir(build(name, seed=seed), path)
        return path.read_bytes()


def compile_task(model: ModelRef, hw_dict: dict[str, Any], code: str,
                 nir_bytes: bytes | None = None) -> Compiled:
    """Compile ``model`` for the hardware ``hw_dict`` as ``atsnn compile MODEL --hw ...`` does
    (default options, ``input_max`` from the spec), including its all-zero-weights check; a
    topology model compiles ``nir_bytes`` (from :func:`topology_task`).
    :class:`InputChangedError` unless this worker's code fingerprint is ``code``."""
    t0 = time.perf_counter()
    from atsnn.sweep.plan import worker_code_fingerprint
    if worker_code_fingerprint() != code:
        raise InputChangedError(f"worker {socket.gethostname()}:{os.getpid()} runs other atsnn "
                                "code than the sweep was planned with (code fingerprints differ)")
    from atsnn.config import hardware_from_dict
    from atsnn.errors import QuantizationError
    from atsnn.compiler.pipeline import compile_model
    try:
        hw = hardware_from_dict(hw_dict, source="sweep hardware")
        if model.kind == "file":
            _check_file(model.path, model.sha256, "model file")
            program = compile_model(model.path, hw=hw, input_max=model.input_max)
        else:
            with tempfile.TemporaryDirectory(prefix="atsnn-sweep-") as tmp:
                path = Path(tmp) / f"{model.topology}.nir"
                path.write_bytes(nir_bytes)
                program = compile_model(path, hw=hw, input_max=model.input_max)
        for layer in program.layers:  # as compiler/cli.py: a layer whose weights all quantize to 0
            if layer.synapses and all(not s.weight.any() for s in layer.synapses):
                raise QuantizationError(f"layer '{layer.name}': every weight quantized to 0 "
                                        f"(input scale {program.input.scale:.3g} per LSB); "
                                        "check input_max")
    except AtsnnError as exc:
        return Compiled(None, f"compile: {_one_line(exc)}", None, time.perf_counter() - t0)
    return Compiled(program, None, memory_fit(program), time.perf_counter() - t0)


def _load(program, data: DataRef, *, synthetic_samples: int = 8):
    """(x, y, name) as ``atsnn simulate`` loads them: the first ``data.samples`` samples."""
    from atsnn.errors import SimulationInputError
    from atsnn.hwsim.datasets import load_data
    if data.sha256:
        _check_file(data.spec, data.sha256, "data file")
    x, y, name = load_data(data.spec, tuple(program.input.shape), encoding=program.input.encoding,
                           synthetic_samples=synthetic_samples)
    if data.samples is not None:
        if y is not None and len(y) != len(x):
            raise SimulationInputError(f"data {data.label}: {len(y)} labels for {len(x)} samples; "
                                       "give one label per sample")
        x, y = x[:data.samples], (None if y is None else y[:data.samples])
    return x, y, name


def _costs(cost: CostRef):
    import tomllib

    from atsnn.costs import costs_from_dict
    return costs_from_dict(tomllib.loads(cost.toml_text), dram=cost.dram, source=cost.name)


def _error_figures(points, message: str) -> dict[str, dict[str, Any]]:
    return {p.key: {"error": message} for p in points}


def pe_utilisation(trace) -> float | None:
    """Busy PE-cycles over (PEs x compute cycles) of the PE layers in the fixed-T run: the
    fraction of the array's PEs at work while a layer computes (unused PEs count as idle)."""
    hw = trace.program.hardware
    busy = norm = 0.0
    for layer in trace.program.layers:
        if layer.mapping.unit != "pe":
            continue
        busy += float(trace.busy[layer.name].sum())
        norm += float(trace.busy_norm[layer.name])
    return busy / (hw.pe_count * norm) if norm > 0 else None


def exact_figures(trace, res, fixed) -> dict[str, Any]:
    """The table's figures of one policy result: ``summary.json``'s entry (same names, same
    values) plus the mean energy per inference of every component and the PE utilisation."""
    from atsnn.hwsim.energy import COMPONENTS
    from atsnn.hwsim.results import summary_entry
    e = summary_entry(trace, res, fixed)
    out = {k: e[k] for k in ("accuracy", "avg_timestep", "energy_per_inference_uj",
                             "latency_per_inference_ms", "cycles_per_inference", "fps",
                             "energy_saved_vs_fixed_pct", "at_energy_share_of_pe")}
    for c in COMPONENTS:
        out[f"energy_{c}_uj"] = float(res.energy_by_component[c].mean()) * 1e-6
    out["pe_utilisation"] = pe_utilisation(trace)
    out["samples_run"] = int(trace.samples)
    return out


def exact_unit_task(compiled: Compiled, data: DataRef, T: int, cost: CostRef,
                    points: list[Point]) -> UnitOutcome:
    """Simulate the compiled program once at ``T`` on ``data`` with ``cost`` and evaluate every
    policy point from that one trace (``atsnn simulate`` semantics)."""
    t0 = time.perf_counter()
    if compiled.error is not None:
        return UnitOutcome(_error_figures(points, compiled.error), time.perf_counter() - t0)
    from atsnn import ilif
    from atsnn.errors import SimulationInputError
    from atsnn.hwsim.engine import simulate
    from atsnn.hwsim.policies import evaluate
    program = compiled.program
    try:
        x, y, _ = _load(program, data)
        trace = simulate(program, x, y, T=T, costs=_costs(cost))
        fixed = evaluate(trace, "fixed")
    except AtsnnError as exc:
        return UnitOutcome(_error_figures(points, f"simulate: {_one_line(exc)}"),
                           time.perf_counter() - t0)
    heads = [layer.name for layer in program.layers if layer.neuron == "integrator"]
    figures: dict[str, dict[str, Any]] = {}
    for p in points:
        try:
            if p.policy != "fixed" and ilif.is_ilif(program):
                raise ilif.early_exit_error(program, f"the {p.policy} exit policy")
            if p.policy != "fixed" and len(heads) > 1:
                raise SimulationInputError(f"program '{program.name}' has {len(heads)} output "
                                           "heads; exit policies need one classifier output")
            res = fixed if p.policy == "fixed" else evaluate(trace, p.policy, **p.params)
            figures[p.key] = exact_figures(trace, res, fixed)
        except AtsnnError as exc:
            figures[p.key] = {"error": f"policy: {_one_line(exc)}"}
            continue
        figures[p.key]["memory_fit"] = compiled.memory_fit
    return UnitOutcome(figures, time.perf_counter() - t0)


def rates_task(compiled: Compiled, model: ModelRef) -> Rates:
    """Firing rates for the analytic mode as ``atsnn estimate`` gets them: the spec's uniform
    ``rate`` (half the input bits set per step), or a functional fixed-point run of the program
    on the first ``samples`` samples of its data for ``measure_T`` timesteps."""
    t0 = time.perf_counter()
    if compiled.error is not None:
        return Rates(None, None, None, None, compiled.error, time.perf_counter() - t0)
    import numpy as np

    from atsnn.hwsim.functional import run_functional
    program = compiled.program
    try:
        if model.rate is not None:
            spiking = [layer.name for layer in program.layers if layer.neuron != "integrator"]
            ev = int(np.prod(program.input.shape)) * program.input.bits / 2
            return Rates({n: model.rate for n in spiking}, float(ev), "uniform rate given", None,
                         None, time.perf_counter() - t0)
        data = model.data
        x, _, dname = _load(program, data, synthetic_samples=data.samples or 2)
        run = run_functional(program, x, T=model.measure_T)
        note = f"rates measured on {len(x)} samples of {dname} at T={model.measure_T}"
        return Rates(run.rates(program), float(run.input_events.mean()), note, int(len(x)), None,
                     time.perf_counter() - t0)
    except AtsnnError as exc:
        return Rates(None, None, None, None, f"rates: {_one_line(exc)}", time.perf_counter() - t0)


def analytic_unit_task(compiled: Compiled, rates: Rates, T: int, cost: CostRef,
                       points: list[Point]) -> UnitOutcome:
    """The analytic estimate at ``T`` with ``cost`` (``atsnn.hwsim.analytic.estimate``, fixed T)."""
    t0 = time.perf_counter()
    error = compiled.error or rates.error
    if error is not None:
        return UnitOutcome(_error_figures(points, error), time.perf_counter() - t0)
    from atsnn.hwsim.analytic import estimate
    program = compiled.program
    try:
        a = estimate(program, rates.rates, T,
                     input_events_per_timestep=rates.input_events_per_timestep,
                     costs=_costs(cost))
    except AtsnnError as exc:
        return UnitOutcome(_error_figures(points, f"estimate: {_one_line(exc)}"),
                           time.perf_counter() - t0)
    hw = program.hardware
    latency_ms = a.cycles_per_inference / hw.system.clock_hz * 1e3
    fig: dict[str, Any] = dict(accuracy=None, avg_timestep=float(T),
                               energy_per_inference_uj=a.energy_per_inference_pj * 1e-6,
                               latency_per_inference_ms=latency_ms,
                               cycles_per_inference=a.cycles_per_inference, fps=a.fps,
                               energy_saved_vs_fixed_pct=None, at_energy_share_of_pe=None)
    for c, v in a.energy_by_component_pj.items():
        fig[f"energy_{c}_uj"] = v * 1e-6
    fig.update(pe_utilisation=None, samples_run=rates.samples_run, memory_fit=compiled.memory_fit,
               note=rates.note + ("; lockstep statistics sampled" if a.sampled else ""))
    return UnitOutcome({p.key: dict(fig) for p in points}, time.perf_counter() - t0)
