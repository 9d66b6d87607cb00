"""What ATSN training buys on the accelerator: the L_imp-trained digits CNN against the converted one.

Both shipped models (``digits_cnn_atsn.nir``, trained with seed 001's L_imp by
:mod:`atsnn.workloads.train_atsn`; ``digits_cnn_clip.nir``, a cross-entropy-trained ANN converted with
its clip thresholds) are compiled for the default hardware and simulated once at T = 8 on the
digits test split; fixed-T accuracy at T = 1..4 and 8 and the ATSN policy come from that one trace
(exact: membranes up to T do not depend on the policy). ``write_atsn_report(dir)`` writes
``atsn_training.md``.
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).parent / "models"
MODELS = (("digits_cnn_atsn", "L_imp-trained SNN (seed 001 eq. 11-13)"),
          ("digits_cnn_clip", "cross-entropy ANN, converted (clip thresholds)"))
T_MAX = 8
FIXED_T = (1, 2, 3, 4, 8)
CL_INIT = TAU_CL = 0.999


def measure(model: str) -> dict:
    from atsnn.compiler.pipeline import compile_model
    from atsnn.hwsim.datasets import load_data
    from atsnn.hwsim.engine import simulate
    from atsnn.hwsim.policies import evaluate
    program = compile_model(MODELS_DIR / f"{model}.nir")
    x, y, _ = load_data("digits", tuple(program.input.shape))
    trace = simulate(program, x, y, T=T_MAX)
    fixed = {T: float((trace.u[:, T - 1].argmax(axis=1) == y).mean()) for T in FIXED_T}
    at = evaluate(trace, "atsn", cl_init=CL_INIT, tau_cl=TAU_CL)
    full = evaluate(trace, "fixed")
    return dict(fixed=fixed, atsn_accuracy=at.accuracy, atsn_avg_t=at.avg_timestep,
                atsn_energy_uj=float(at.energy_pj.mean()) * 1e-6, fixed8_energy_uj=float(full.energy_pj.mean()) * 1e-6,
                samples=len(y), hardware=program.hardware.name, costs=trace.costs.ref)


def atsn_markdown() -> str:
    rows = {m: (label, measure(m)) for m, label in MODELS}
    first = next(iter(rows.values()))[1]
    head = " | ".join(f"T={T}" for T in FIXED_T)
    lines = ["# ATSN training on the accelerator (seed 001, digits)", "",
             f"Fixed-point programs on `{first['hardware']}` (cost table `{first['costs']}`), {first['samples']} "
             f"test images, one simulation at T = {T_MAX} per model; ATSN with CL_init = tau_CL = {CL_INIT}.", "",
             f"| model | {head} | ATSN accuracy | ATSN avg T | ATSN energy / image | fixed T=8 energy / image |",
             "|---|" + "---|" * (len(FIXED_T) + 4)]
    for m, (label, r) in rows.items():
        acc = " | ".join(f"{100 * r['fixed'][T]:.1f} %" for T in FIXED_T)
        lines.append(f"| `{m}`: {label} | {acc} | {100 * r['atsn_accuracy']:.1f} % | {r['atsn_avg_t']:.2f} | "
                     f"{r['atsn_energy_uj']:.3f} uJ | {r['fixed8_energy_uj']:.3f} uJ |")
    lines += ["", "The float-SNN comparison with the same network trained by plain cross-entropy on the final "
              "output (and an equal-weight ablation) is in `workloads/models/digits_cnn_atsn.json`.", ""]
    return "\n".join(lines)


def write_atsn_report(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "atsn_training.md"
    path.write_text(atsn_markdown())
    return path
