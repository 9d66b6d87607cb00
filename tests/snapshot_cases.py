"""Stored figures of every shipped model, VGG16, an iLIF and a PSN program: the regression oracle
for restructuring (traces, cycles, energies and run reports must not change).

Each case compiles a model with default options, simulates a fixed slice of its data at a fixed
T, evaluates the fixed, DTSNN and ATSN policies, writes the run directory and records

- per layer and trace field (events, synops, ..., ``energy_<component>``): the exact sum and a
  SHA-256 of the ``(samples, T)`` array,
- the output membranes' hash, the input-load cycles and energy,
- per policy: the ``summary.json`` entry, hashes of exit steps, cycles and energy per sample,
  energy per component and per layer,
- the analytic estimate at ``4 T`` from the trace's firing rates (not for iLIF),
- the SHA-256 of every text file of the run directory (``summary.json`` and the CSVs).

Regenerate (only when a change of figures is intended, with the reason in the commit)::

    .venv/bin/python tests/snapshot_cases.py --write [CASE ...]
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SNAPSHOTS = HERE / "fixtures" / "snapshots"
MODELS = ROOT / "workloads" / "models"

#: case -> (model, data, samples, T); "model" is a shipped NIR stem, "ilif:<stem>" or a topology
CASES: dict[str, tuple[str, str, int, int]] = {
    "digits_cnn_atsn": ("digits_cnn_atsn", "digits", 40, 16),
    "digits_cnn_clip": ("digits_cnn_clip", "digits", 40, 16),
    "digits_cnn_p999": ("digits_cnn_p999", "digits", 40, 16),
    "digits_mlp": ("digits_mlp", "digits", 40, 16),
    "digits_mlp_max": ("digits_mlp_max", "digits", 40, 16),
    "digits_seq_lif": ("digits_seq_lif", "digits-seq", 40, 8),
    "digits_seq_psn": ("digits_seq_psn", "digits-seq", 40, 8),
    "ilif_digits_cnn_clip": ("ilif:digits_cnn_clip", "digits", 40, 8),
    "vgg16": ("topology:vgg16", "synthetic", 1, 2),
}
POLICIES = (("fixed", {}), ("dtsnn", {"theta": 0.1}), ("atsn", {"cl_init": 0.999, "tau_cl": 0.999}))


def _sha(a) -> str:
    a = np.ascontiguousarray(np.asarray(a))
    h = hashlib.sha256(str((a.dtype.str, a.shape)).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _program(model: str):
    from atsnn.compiler.pipeline import compile_model
    if model.startswith("ilif:"):
        from atsnn.compiler.ilif import to_ilif
        from atsnn.compiler.nir_import import import_nir
        return compile_model(to_ilif(import_nir(MODELS / f"{model[5:]}.nir"), 8))
    if model.startswith("topology:"):
        from atsnn.workloads.topologies import build
        return compile_model(build(model.split(":", 1)[1]))
    return compile_model(MODELS / f"{model}.nir")


def _data(program, data: str, samples: int):
    if data == "synthetic" and program.input.encoding == "direct":
        from atsnn.workloads.topologies import synthetic_images
        return synthetic_images(samples, 1), None
    from atsnn.hwsim.datasets import load_data
    x, y, _ = load_data(data, tuple(program.input.shape), encoding=program.input.encoding)
    return x[:samples], (None if y is None else y[:samples])


def collect(case: str) -> dict:
    """Every recorded figure of one case (see the module docstring)."""
    from atsnn.hwsim.engine import simulate
    from atsnn.hwsim.policies import evaluate
    from atsnn.hwsim.results import summary_entry, write_run

    model, data, samples, T = CASES[case]
    program = _program(model)
    x, y = _data(program, data, samples)
    trace = simulate(program, x, y, T=T)
    policies = POLICIES if program.early_exit else POLICIES[:1]
    results = [evaluate(trace, p, **kw) for p, kw in policies]
    fixed = results[0]
    out: dict = dict(case=case, T=T, samples=int(trace.samples), u=_sha(trace.u),
                     input_load_cycles=int(trace.input_load_cycles),
                     input_load_energy_pj=float(trace.input_load_energy_pj), layers={}, policies={})
    for layer, fields in trace.layers.items():
        out["layers"][layer] = {f: dict(sum=float(np.sum(a)), sha=_sha(a))
                                for f, a in sorted(fields.items())}
    for r in results:
        entry = summary_entry(trace, r, fixed)
        out["policies"][r.policy] = dict(
            summary=json.loads(json.dumps(entry, default=float)), exit_t=_sha(r.exit_t),
            predicted=_sha(r.predicted), cycles=_sha(r.cycles), energy_pj=_sha(r.energy_pj),
            energy_by_component={c: float(np.sum(v)) for c, v in sorted(r.energy_by_component.items())},
            energy_by_layer={k: {c: float(e) for c, e in sorted(v.items())}
                             for k, v in sorted(r.energy_by_layer.items())},
            at_energy_pj=float(r.at_energy_pj), pe_energy_pj=float(r.pe_energy_pj))
    if not any(l.neuron == "ilif" for l in program.layers):
        from dataclasses import asdict

        from atsnn.hwsim.analytic import estimate, rates_from_trace
        rates, events = rates_from_trace(trace)
        est = estimate(program, rates, 4 * T, input_events_per_timestep=events)
        out["analytic"] = json.loads(json.dumps(asdict(est), default=float))
    with tempfile.TemporaryDirectory(prefix="atsnn-snapshot-") as d:
        run = Path(d) / "run"
        write_run(run, trace, results, dataset=data)
        out["run_files"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                            for p in sorted(run.iterdir()) if p.suffix in (".json", ".csv")}
    return out


def stored(case: str) -> dict:
    return json.loads((SNAPSHOTS / f"{case}.json").read_text())


def differences(expected, actual, path: str = "", rel: float = 0.0) -> list[str]:
    """Paths where two collected records differ (floats compared exactly unless ``rel``)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for k in sorted(set(expected) | set(actual)):
            if k not in expected or k not in actual:
                out.append(f"{path}/{k}: only in {'stored' if k in expected else 'new'}")
            else:
                out += differences(expected[k], actual[k], f"{path}/{k}", rel)
        return out
    if isinstance(expected, float) and isinstance(actual, float) and rel > 0:
        ok = abs(expected - actual) <= rel * max(abs(expected), abs(actual))
    else:
        ok = expected == actual
    return [] if ok else [f"{path}: stored {expected!r}, now {actual!r}"]


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "--write":
        print(__doc__)
        return 2
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    for case in argv[1:] or list(CASES):
        (SNAPSHOTS / f"{case}.json").write_text(json.dumps(collect(case), indent=1) + "\n")
        print(f"wrote {SNAPSHOTS / f'{case}.json'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
