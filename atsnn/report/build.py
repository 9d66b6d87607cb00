"""Build the report folder of one run directory (docs/results.md files only)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from atsnn.errors import AtsnnError

COMPONENT_COLOURS = {"pe_logic": "#4c72b0", "pe_memory": "#55a868", "spike_buffers": "#8172b2",
                     "at_unit": "#c44e52", "glb": "#dd8452", "dram": "#937860", "leakage": "#8c8c8c"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "font.size": 10})
    return plt


def build_report(run_dir: str | Path, out_dir: str | Path | None = None, *, layer: str | None = None,
                 force: bool = False) -> Path:
    """Write the report of ``run_dir`` into ``out_dir`` (default RUN_DIR/report) all at once.

    Every table is read and checked first; the figures go to a temporary directory that replaces
    the target only when complete (atsnn.files rules), so a bad run or layer leaves nothing."""
    from atsnn.files import atomic_directory, check_output_path
    from atsnn.run_schema import read_run
    run = Path(run_dir)
    final = Path(out_dir) if out_dir is not None else run / "report"
    if run.is_dir():
        check_output_path(final, kind="report", inputs=(run,), force=force)
    rd = read_run(run)
    summary, t = rd.summary, rd.tables
    per_sample, plt_ = t["per_sample.csv"], t["per_layer_timestep.csv"]
    breakdown, per_t = t["energy_breakdown.csv"], t["energy_per_timestep.csv"]
    util, sweep_d, sweep_a = t["pe_utilisation.csv"], t["sweep_dtsnn.csv"], t["sweep_atsn.csv"]
    try:
        with atomic_directory(final, kind="report", inputs=(run,), force=force) as out:
            _write(out, summary, per_sample, plt_, breakdown, per_t, util, sweep_d, sweep_a, layer)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise AtsnnError(f"run directory '{run}': tables do not have the columns and values "
                         f"'atsnn simulate' writes ({type(exc).__name__}: {exc})") from None
    return final


def _write(out, summary, per_sample, plt_, breakdown, per_t, util, sweep_d, sweep_a, layer):
    plt = _plt()
    figs = []
    figs.append(_energy_breakdown(plt, breakdown, summary, out))
    figs.append(_energy_per_timestep(plt, per_t, out))
    figs.append(_utilisation(plt, util, summary, out, layer))
    figs.append(_exit_hist(plt, per_sample, summary, out))
    if sweep_d is not None or sweep_a is not None:
        figs.append(_acc_vs_t(plt, sweep_d, sweep_a, summary, out))
    if sweep_a is not None and len(sweep_a) > 1:
        figs.append(_cl_grid(plt, sweep_a, out))
    md = _summary_md(summary, plt_, figs)
    (out / "summary.md").write_text(md)
    (out / "index.html").write_text(_html(summary, md, figs))


def _save(plt, fig, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name)
    plt.close(fig)
    return name


def _stacked_bars(ax, frame: pd.DataFrame) -> None:
    """Bars of ``frame`` (index = x, columns = components) stacked in COMPONENT_COLOURS order."""
    bottom = np.zeros(len(frame))
    for comp, colour in COMPONENT_COLOURS.items():
        if comp in frame.columns and frame[comp].sum() > 0:
            ax.bar(frame.index, frame[comp].values, bottom=bottom, color=colour, label=comp)
            bottom += frame[comp].values
    ax.legend(fontsize=8)


def _energy_breakdown(plt, df, summary, out):
    policy = "atsn" if "atsn" in set(df.policy) else df.policy.iloc[0]
    d = df[df.policy == policy].pivot_table(index="layer", columns="component", values="energy_pj", aggfunc="sum")
    order = [l for l in d.index if l != "(system)"] + (["(system)"] if "(system)" in d.index else [])
    d = d.loc[order] * 1e-6  # pJ -> uJ
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _stacked_bars(ax, d)
    ax.set_xlabel("layer")
    ax.set_ylabel("energy per inference (uJ)")
    ax.set_title(f"Energy per layer and component, policy {policy} ({summary['cost_table']})")
    return _save(plt, fig, out, "energy_breakdown.png")


def _energy_per_timestep(plt, df, out):
    d = df.pivot_table(index="timestep", columns="component", values="energy_pj", aggfunc="sum") * 1e-6
    fig, ax = plt.subplots(figsize=(8, 4))
    _stacked_bars(ax, d)
    ax.set_xlabel("timestep")
    ax.set_ylabel("energy per timestep (uJ)")
    ax.set_title("Energy per timestep and component (fixed-T run, mean per inference)")
    return _save(plt, fig, out, "energy_per_timestep.png")


def _utilisation(plt, util, summary, out, layer):
    pe = util[util.pe != "AT"]
    if layer is None:
        counts = pe.groupby("layer").size()
        layer = counts.idxmax() if len(counts) else util.layer.iloc[0]
    if layer not in set(util.layer):
        raise AtsnnError(f"layer '{layer}' is not in the run (layers: {', '.join(sorted(set(util.layer)))})")
    d = util[util.layer == layer]
    rows = int(max(util.row.max(), d.row.max())) + 1
    cols = int(util.col.max()) + 1
    grid = np.full((rows, cols), np.nan)
    for _, r in d.iterrows():
        grid[int(r.row), int(r.col)] = r.utilisation
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(grid * 100, cmap="viridis", vmin=0, vmax=100)
    at = util[util.pe == "AT"]
    if len(at):
        ax.text(int(at.col.iloc[0]), int(at.row.iloc[0]), "AT", ha="center", va="center", color="red", fontsize=9,
                fontweight="bold")
    ax.set_xlabel("array column")
    ax.set_ylabel("array row")
    ax.set_title(f"PE utilisation (%), layer {layer}; blank = idle tile")
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="busy cycles / layer cycles (%)")
    return _save(plt, fig, out, "pe_utilisation.png")


def _exit_hist(plt, ps, summary, out):
    T = int(summary["timesteps_max"])
    fig, ax = plt.subplots(figsize=(7, 4))
    pols = list(dict.fromkeys(ps.policy))
    width = 0.8 / max(len(pols), 1)
    for i, p in enumerate(pols):
        counts = np.bincount(ps[ps.policy == p].exit_timestep.astype(int), minlength=T + 1)[1:T + 1]
        ax.bar(np.arange(1, T + 1) + (i - (len(pols) - 1) / 2) * width, counts, width=width, label=p)
    ax.set_xlabel("exit timestep")
    ax.set_ylabel("samples")
    ax.set_title("Exit timestep per policy")
    ax.legend()
    return _save(plt, fig, out, "exit_histogram.png")


def _acc_vs_t(plt, sd, sa, summary, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if sd is not None:
        s = sd.sort_values("avg_timestep")
        ax.plot(s.avg_timestep, 100 * s.accuracy, "o-", label="DTSNN (theta sweep)")
    if sa is not None:
        best = sa.groupby("avg_timestep", as_index=False).accuracy.max().sort_values("avg_timestep")
        ax.plot(best.avg_timestep, 100 * best.accuracy, "s-", label="ATSN (CL_init x tau_CL grid, best)")
    fx = summary["policies"].get("fixed")
    if fx and fx["accuracy"] is not None:
        ax.axhline(100 * fx["accuracy"], color="gray", ls="--", label=f"fixed T = {summary['timesteps_max']}")
    ax.set_xlabel("average timestep")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy against average timestep (cf. seed 001 Fig. 3)")
    ax.legend()
    return _save(plt, fig, out, "accuracy_vs_timestep.png")


def _cl_grid(plt, sa, out):
    acc = sa.pivot_table(index="cl_init", columns="tau_cl", values="accuracy")
    ts = sa.pivot_table(index="cl_init", columns="tau_cl", values="avg_timestep")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, d, title, lab in ((axes[0], acc * 100, "Accuracy (%)", "accuracy (%)"),
                              (axes[1], ts, "Average timestep", "timesteps")):
        im = ax.imshow(d.values, origin="lower", aspect="auto", cmap="viridis",
                       extent=[d.columns.min(), d.columns.max(), d.index.min(), d.index.max()])
        ax.set_xlabel("tau_CL")
        ax.set_ylabel("CL_init")
        ax.set_title(f"{title} over CL_init x tau_CL (cf. seed 001 Fig. 5-6)")
        ax.grid(False)
        fig.colorbar(im, ax=ax, label=lab)
    return _save(plt, fig, out, "cl_grid.png")


def _summary_md(summary, plt_, figs) -> str:
    lines = [f"# atsnn report: {summary['program']}", "",
             f"- hardware: `{summary['hardware']}`, {summary['accelerators']} accelerator(s) at "
             f"{summary['clock_hz'] / 1e6:g} MHz",
             f"- cost table: `{summary['cost_table']}`",
             f"- data: {summary['dataset']}, {summary['samples']} samples, T <= {summary['timesteps_max']}"]
    if summary.get("synthetic_weights"):
        lines.append("- **synthetic weights**: this model carries seeded random weights, not trained ones; "
                     "accuracy is meaningless, costs follow its firing rates")
    lines += ["", "| policy | parameters | accuracy | avg timestep | energy / inference (uJ) | latency (us) | FPS | "
                  "energy saved vs fixed | AT / PE energy |", "|---|---|---|---|---|---|---|---|---|"]
    for p, s in summary["policies"].items():
        acc = "-" if s["accuracy"] is None else f"{100 * s['accuracy']:.2f} %"
        saved = "-" if s["energy_saved_vs_fixed_pct"] is None else f"{s['energy_saved_vs_fixed_pct']:.1f} %"
        share = "-" if s.get("at_energy_share_of_pe") is None else f"{s['at_energy_share_of_pe']:.4f}"
        params = ", ".join(f"{k}={v}" for k, v in s["params"].items())
        lines.append(f"| {p} | {params} | {acc} | {s['avg_timestep']:.2f} | {s['energy_per_inference_uj']:.4f} | "
                     f"{s['latency_per_inference_ms'] * 1e3:.2f} | {s['fps']:.0f} | {saved} | {share} |")
    lines += ["", "## Per layer (fixed-T run, mean per inference and timestep)", "",
              "| layer | unit | firing rate | events | synops | cycles | stall cycles | energy (nJ) |",
              "|---|---|---|---|---|---|---|---|"]
    g = plt_.groupby(["layer", "unit"], sort=False).mean(numeric_only=True).reset_index()
    for _, r in g.iterrows():
        lines.append(f"| {r.layer} | {r.unit} | {r.firing_rate:.3f} | {r.events:.1f} | {r.synops:.0f} | "
                     f"{r.cycles:.0f} | {r.stall_cycles:.0f} | {r.energy_pj * 1e-3:.3f} |")
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figs]
    if summary.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"


def _html(summary, md, figs) -> str:
    rows = "".join(f"<figure><img src='{html.escape(f)}' alt='{html.escape(f)}'><figcaption>{html.escape(f)}"
                   f"</figcaption></figure>" for f in figs)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>atsnn report: {html.escape(summary['program'])}"
            "</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{max-width:100%}"
            "pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}</style></head><body>"
            f"<h1>atsnn report: {html.escape(summary['program'])}</h1><pre>{html.escape(md)}</pre>{rows}</body></html>")
