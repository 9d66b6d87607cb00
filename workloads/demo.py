"""The demo: compile the shipped digits SNN, simulate the test split with fixed T, DTSNN and ATSN
(with threshold sweeps), write the report and the Verilog, and print a short summary."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

MODEL = Path(__file__).parent / "models" / "digits_cnn_clip.nir"
MLP_MODEL = Path(__file__).parent / "models" / "digits_mlp.nir"
DEMO_T = 8
DEMO_THETA = 0.1


def run_demo(out: str | Path = "out/demo", *, hw: str | None = None, quiet: bool = False,
             force: bool = False, keep=("program", "run", "report", "verilog")) -> dict:
    """Compile, simulate, report and export the built-in digits model into ``out``.

    ``out`` is written all at once as a ``demo`` output (atsnn.files rules: a new or empty
    directory, or an earlier demo output; ``force`` replaces a foreign one, never an input or
    the current directory). ``keep`` names the parts that stay in it.
    """
    from atsnn.files import atomic_directory

    t0 = time.perf_counter()
    final = Path(out)
    with atomic_directory(final, kind="demo", force=force, inputs=(MODEL,)) as tmp:
        summary = _demo_into(tmp, hw=hw, quiet=quiet)
        for part in ("program", "run", "report", "verilog"):
            if part not in keep:
                shutil.rmtree(tmp / part, ignore_errors=True)
    report = final / "report" / "index.html"
    verilog = summary.pop("_verilog")
    paths = dict(program=final / "program", run=final / "run", report=report,
                 verilog=final / "verilog" if verilog else None)
    summary["_paths"] = {k: (str(v) if v is not None else None) for k, v in paths.items()
                         if k in keep}
    summary["_paths"]["seconds"] = time.perf_counter() - t0
    return summary


def _demo_into(out: Path, *, hw: str | None, quiet: bool) -> dict:
    from atsnn.program import save_program
    from atsnn.report import build_report
    from atsnn.compiler.pipeline import compile_model
    from atsnn.hwsim.cli import sweep_grids
    from atsnn.hwsim.datasets import load_data
    from atsnn.hwsim.engine import simulate
    from atsnn.hwsim.policies import evaluate, sweep_atsn, sweep_dtsnn
    from atsnn.hwsim.results import write_run

    program = compile_model(MODEL, hw=hw)
    save_program(program, out / "program")
    x, y, dname = load_data("digits", tuple(program.input.shape))
    trace = simulate(program, x, y, T=DEMO_T, progress=not quiet)
    results = [evaluate(trace, "fixed"), evaluate(trace, "dtsnn", theta=DEMO_THETA),
               evaluate(trace, "atsn", cl_init=0.999, tau_cl=0.999)]
    th, a, b = sweep_grids()
    summary = write_run(out / "run", trace, results, dataset=dname,
                        sweeps=(sweep_dtsnn(trace, th), sweep_atsn(trace, a, b)))
    build_report(out / "run", out / "report")
    try:
        from atsnn.rtl.export import export_verilog
        summary["_verilog"] = export_verilog(program.hardware, out / "verilog", lint=False)
    except ImportError:
        summary["_verilog"] = None
    return summary


def print_summary(summary: dict) -> None:
    p = summary["_paths"]
    print(f"atsnn demo: {summary['program']} on {summary['hardware']} ({summary['accelerators']} accelerators, "
          f"{summary['clock_hz'] / 1e6:g} MHz), cost table {summary['cost_table']}")
    print(f"data: {summary['dataset']}, {summary['samples']} samples, T <= {summary['timesteps_max']}")
    print(f"{'policy':8s} {'accuracy':>9s} {'avg T':>6s} {'energy/inf':>12s} {'latency':>10s} {'FPS':>10s} "
          f"{'energy saved':>13s}")
    for name, s in summary["policies"].items():
        saved = "-" if s["energy_saved_vs_fixed_pct"] is None else f"{s['energy_saved_vs_fixed_pct']:.1f}%"
        print(f"{name:8s} {100 * s['accuracy']:8.2f}% {s['avg_timestep']:6.2f} {s['energy_per_inference_uj']:9.3f} uJ "
              f"{s['latency_per_inference_ms'] * 1e3:7.2f} us {s['fps']:10.0f} {saved:>13s}")
    at = summary["policies"].get("atsn")
    if at and at.get("at_energy_share_of_pe") is not None:
        print(f"AT unit energy / PE energy (atsn): {at['at_energy_share_of_pe']:.4f}")
    for label, key in (("program:", "program"), ("tables: ", "run"), ("report: ", "report")):
        if key in p:
            print(f"{label} {p[key]}")
    if "verilog" in p:
        print(f"verilog: {p['verilog'] or 'not available in this build'}")
    print(f"done in {p['seconds']:.1f} s")
