"""Result tables (pandas, units in column names) and writers for docs/results.md."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atsnn.files import atomic_directory
from atsnn.hwsim.energy import COMPONENTS
from atsnn.hwsim.policies import PolicyResult


def summary_entry(trace, res: PolicyResult, fixed: PolicyResult | None) -> dict[str, Any]:
    hw = trace.program.hardware
    cyc = float(res.cycles.mean())
    e_pj = float(res.energy_pj.mean())
    saved = None
    if fixed is not None and fixed.energy_pj.mean() > 0:
        saved = 100.0 * (1.0 - e_pj / float(fixed.energy_pj.mean()))
    return dict(params=res.params, accuracy=res.accuracy, avg_timestep=res.avg_timestep,
                energy_per_inference_uj=e_pj * 1e-6, latency_per_inference_ms=cyc / hw.system.clock_hz * 1e3,
                cycles_per_inference=cyc, fps=hw.system.accelerators * hw.system.clock_hz / cyc,
                energy_saved_vs_fixed_pct=saved,
                at_energy_share_of_pe=(res.at_energy_pj / res.pe_energy_pj) if res.pe_energy_pj > 0 else None,
                dataset_energy_j=e_pj * 1e-12 * trace.samples)


def per_sample_frame(trace, results: list[PolicyResult]) -> pd.DataFrame:
    hw = trace.program.hardware
    frames = []
    for r in results:
        labels = trace.labels if trace.labels is not None else np.full(trace.samples, -1)
        frames.append(pd.DataFrame(dict(policy=r.policy, sample=np.arange(trace.samples), label=labels,
                                        predicted=r.predicted,
                                        correct=(r.predicted == labels) if trace.labels is not None else False,
                                        exit_timestep=r.exit_t, cycles=r.cycles,
                                        latency_s=r.cycles / hw.system.clock_hz, energy_pj=r.energy_pj)))
    return pd.concat(frames, ignore_index=True)


def per_layer_timestep_frame(trace) -> pd.DataFrame:
    rows = []
    for l in trace.program.layers:
        d = trace.layers[l.name]
        for t in range(trace.T):
            row = dict(layer=l.name, unit=l.mapping.unit, timestep=t + 1)
            for f in ("events", "synops", "updates", "spikes", "sat_hi", "sat_lo", "compute_cycles", "stall_cycles",
                      "cycles", "glb_bytes", "dram_bytes"):
                row[f] = float(d[f][:, t].mean())
            row["firing_rate"] = row["spikes"] / l.neurons if l.neuron != "integrator" else 0.0
            row["energy_pj"] = float(sum(d[f"energy_{c}"][:, t].mean() for c in COMPONENTS if c != "leakage"))
            rows.append(row)
    cols = ["layer", "unit", "timestep", "events", "synops", "updates", "spikes", "firing_rate", "sat_hi", "sat_lo",
            "compute_cycles", "stall_cycles", "cycles", "glb_bytes", "dram_bytes", "energy_pj"]
    return pd.DataFrame(rows)[cols]


def energy_breakdown_frame(results: list[PolicyResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        for layer, comps in r.energy_by_layer.items():
            for c, e in comps.items():
                rows.append(dict(policy=r.policy, layer=layer, component=c, energy_pj=float(e)))
    return pd.DataFrame(rows, columns=["policy", "layer", "component", "energy_pj"])


def energy_per_timestep_frame(trace) -> pd.DataFrame:
    step = trace.step_energy()
    cyc = trace.step_cycles()
    rows = []
    for t in range(trace.T):
        for c, arr in step.items():
            rows.append(dict(timestep=t + 1, component=c, energy_pj=float(arr[:, t].mean())))
        rows.append(dict(timestep=t + 1, component="leakage",
                         energy_pj=float(trace.action.leakage_pj(cyc[:, t]).mean())))
    return pd.DataFrame(rows, columns=["timestep", "component", "energy_pj"])


def pe_utilisation_frame(trace) -> pd.DataFrame:
    hw = trace.program.hardware
    rows = []
    cols = hw.array.cols
    for l in trace.program.layers:
        norm = trace.busy_norm[l.name]
        b = trace.busy[l.name]
        if l.mapping.unit == "at":
            tile = hw.array.tiles - 1
            rows.append(dict(layer=l.name, pe="AT", row=tile // cols, col=tile % cols,
                             utilisation=float(b[0] / norm) if norm > 0 else 0.0))
            continue
        for p in range(len(b)):
            rows.append(dict(layer=l.name, pe=str(p), row=p // cols, col=p % cols,
                             utilisation=float(b[p] / norm) if norm > 0 else 0.0))
    return pd.DataFrame(rows, columns=["layer", "pe", "row", "col", "utilisation"])


def sweep_frames(dtsnn: list[PolicyResult] | None, atsn: list[PolicyResult] | None):
    d = None
    a = None
    if dtsnn:
        d = pd.DataFrame([dict(theta=r.params["theta"], accuracy=r.accuracy, avg_timestep=r.avg_timestep,
                               energy_per_inference_uj=float(r.energy_pj.mean()) * 1e-6) for r in dtsnn])
    if atsn:
        a = pd.DataFrame([dict(cl_init=r.params["cl_init"], tau_cl=r.params["tau_cl"], accuracy=r.accuracy,
                               avg_timestep=r.avg_timestep, energy_per_inference_uj=float(r.energy_pj.mean()) * 1e-6)
                          for r in atsn])
    return d, a


def write_run(run_dir: str | Path, trace, results: list[PolicyResult], *, dataset: str,
              sweeps: tuple | None = None, notes: list[str] | None = None, force: bool = False,
              inputs=()) -> dict[str, Any]:
    """Write every file of docs/results.md atomically (temp dir, then rename).

    The run directory is replaced only when it is an earlier run output (atsnn.files rules);
    ``inputs`` are the paths the run read, which the output may not hold.
    """
    prog = trace.program
    hw = prog.hardware
    fixed = next((r for r in results if r.policy == "fixed"), None)
    summary = dict(program=prog.name, hardware=hw.name, cost_table=trace.costs.ref, clock_hz=hw.system.clock_hz,
                   accelerators=hw.system.accelerators, timesteps_max=trace.T, samples=trace.samples, dataset=dataset,
                   synthetic_weights=bool(prog.report.get("synthetic_weights", False)),
                   policies={r.policy: summary_entry(trace, r, fixed) for r in results},
                   notes=list(notes or []) + list(trace.notes))
    with atomic_directory(run_dir, kind="run", force=force, inputs=inputs) as tmp:
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default))
        per_sample_frame(trace, results).to_csv(tmp / "per_sample.csv", index=False)
        per_layer_timestep_frame(trace).to_csv(tmp / "per_layer_timestep.csv", index=False)
        energy_breakdown_frame(results).to_csv(tmp / "energy_breakdown.csv", index=False)
        energy_per_timestep_frame(trace).to_csv(tmp / "energy_per_timestep.csv", index=False)
        pe_utilisation_frame(trace).to_csv(tmp / "pe_utilisation.csv", index=False)
        if sweeps is not None:
            d, a = sweep_frames(*sweeps)
            if d is not None:
                d.to_csv(tmp / "sweep_dtsnn.csv", index=False)
            if a is not None:
                a.to_csv(tmp / "sweep_atsn.csv", index=False)
    return summary


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if math.isnan(o) else float(o)
    raise TypeError(type(o))
