"""Pareto fronts of a sweep table, their PNG plots and the sweep's ``index.html``.

Two fronts, each computed per model (points of different models answer different tasks):

- energy vs accuracy: lowest ``energy_per_inference_uj`` for the highest ``accuracy``
  (points without accuracy, e.g. analytic ones, are not on it);
- FPS vs energy: highest ``fps`` for the lowest ``energy_per_inference_uj``.

A point is on a front when no other point of its model is at least as good in both figures
and better in one. Failed points (``error`` set) are on no front.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

#: (column flagging the front, x column, minimise x?, y column, maximise y?, title, PNG name)
FRONTS = (
    ("pareto_energy_accuracy", "energy_per_inference_uj", True, "accuracy", True,
     "energy per inference vs accuracy", "pareto_energy_accuracy.png"),
    ("pareto_fps_energy", "energy_per_inference_uj", True, "fps", True,
     "FPS vs energy per inference", "pareto_fps_energy.png"),
)


def pareto_mask(x: np.ndarray, y: np.ndarray, *, minimise_x: bool = True,
                maximise_y: bool = True) -> np.ndarray:
    """Boolean mask of the non-dominated points of (x, y); NaN points are never on the front.

    Point i is dominated when some j is no worse in both coordinates and better in one
    (better x: smaller when ``minimise_x``; better y: larger when ``maximise_y``). Ties in both
    coordinates keep every tied point."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xs = x if minimise_x else -x
    ys = -y if maximise_y else y  # now both are minimised
    ok = np.isfinite(xs) & np.isfinite(ys)
    mask = np.zeros(len(x), dtype=bool)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return mask
    order = idx[np.lexsort((ys[idx], xs[idx]))]  # by x, then y
    best_y = np.inf
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        group = order[i:j + 1]  # equal x, sorted by y
        gmin = ys[group[0]]
        if gmin < best_y:  # else a point of smaller x is at least as good in y: dominated
            mask[group[ys[group] == gmin]] = True
            best_y = gmin
        i = j + 1
    return mask


def add_front_flags(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with one boolean column per front (see :data:`FRONTS`), computed per model."""
    out = table.copy()
    ok = out["error"].isna() if "error" in out else pd.Series(True, index=out.index)
    for col, xc, minx, yc, maxy, *_ in FRONTS:
        flag = pd.Series(False, index=out.index)
        for _, grp in out[ok].groupby("model", sort=False):
            xv = pd.to_numeric(grp[xc], errors="coerce").to_numpy()
            yv = pd.to_numeric(grp[yc], errors="coerce").to_numpy()
            flag.loc[grp.index] = pareto_mask(xv, yv, minimise_x=minx, maximise_y=maxy)
        out[col] = flag
    return out


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def front_png(table: pd.DataFrame, col: str, xc: str, yc: str, title: str) -> bytes:
    """PNG of every successful point (faint) and each model's front (line, markers)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    ok = table[table["error"].isna()] if "error" in table else table
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = 0
    for k, (model, grp) in enumerate(ok.groupby("model", sort=False)):
        xv = pd.to_numeric(grp[xc], errors="coerce")
        yv = pd.to_numeric(grp[yc], errors="coerce")
        good = xv.notna() & yv.notna()
        if not good.any():
            continue
        c = colours[k % len(colours)]
        ax.scatter(xv[good], yv[good], s=12, color=c, alpha=0.3)
        front = grp[good & grp[col].astype(bool)]
        fx = pd.to_numeric(front[xc]).to_numpy()
        fy = pd.to_numeric(front[yc]).to_numpy()
        o = np.argsort(fx, kind="stable")
        ax.plot(fx[o], fy[o], "-o", color=c, ms=4, label=f"{model} ({len(front)} on front)")
        drawn += 1
    ax.set_xlabel(xc)
    ax.set_ylabel(yc)
    ax.set_title(title)
    if drawn:
        xs = pd.to_numeric(ok[xc], errors="coerce").dropna()
        if len(xs) and xs.min() > 0 and xs.max() / xs.min() > 100:
            ax.set_xscale("log")
        if yc == "fps":
            ys = pd.to_numeric(ok[yc], errors="coerce").dropna()
            if len(ys) and ys.min() > 0 and ys.max() / ys.min() > 100:
                ax.set_yscale("log")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no points with both figures", ha="center", va="center",
                transform=ax.transAxes)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _html_table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.6g}", border=0,
                      classes="t", escape=True)


def index_html(table: pd.DataFrame, *, name: str, description: str, stats: dict) -> str:
    """The sweep's index page: counts, both front plots, the front points and the failures."""
    esc = html.escape
    shown = ["model", "hardware", "costs", "dram", "T", "policy", "theta", "cl_init", "tau_cl",
             "accuracy", "avg_timestep", "energy_per_inference_uj", "latency_per_inference_ms",
             "fps", "memory_fit"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>sweep {esc(name)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table.t{border-collapse:collapse;font-size:13px}table.t td,table.t th"
             "{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}</style>"
             "</head><body>",
             f"<h1>Design-space sweep: {esc(name)}</h1>"]
    if description:
        parts.append(f"<p>{esc(description)}</p>")
    parts.append(f"<p>{stats['points']} points ({stats['failed']} failed): {stats['computed']} "
                 f"computed in the last run, {stats['reused']} reused from the store. "
                 f"Full table: <a href='points.csv'>points.csv</a>.</p>")
    for col, xc, _, yc, _, title, png in FRONTS:
        parts.append(f"<h2>{esc(title)}</h2><img src='{png}' alt='{esc(title)}'>")
        front = table[table[col].astype(bool)] if col in table else table.iloc[:0]
        cols = [c for c in shown if c in front.columns]
        if len(front):
            parts.append(_html_table(front[cols].sort_values(["model", xc])))
        else:
            parts.append("<p>no point has both figures.</p>")
    failed = table[table["error"].notna()] if "error" in table else table.iloc[:0]
    if len(failed):
        parts.append(f"<h2>Failed points ({len(failed)})</h2>")
        cols = [c for c in ("model", "hardware", "costs", "dram", "T", "policy", "error")
                if c in failed.columns]
        parts.append(_html_table(failed[cols]))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(store, table: pd.DataFrame, *, name: str, description: str,
                 stats: dict) -> list[Path]:
    """Write both PNGs and ``index.html`` into the store (each file atomically)."""
    paths = []
    for col, xc, _, yc, _, title, png in FRONTS:
        paths.append(store.write_bytes(png, front_png(table, col, xc, yc, title)))
    paths.append(store.write_text("index.html", index_html(table, name=name,
                                                           description=description, stats=stats)))
    return paths


__all__ = ["FRONTS", "add_front_flags", "front_png", "index_html", "pareto_mask", "write_report"]
