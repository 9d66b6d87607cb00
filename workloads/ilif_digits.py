"""IF vs iLIF conversion of the digits CNN: accuracy, energy and latency against T (seed 003).

Both SNNs come from the same trained ANN (``workloads/models/digits_cnn_clip.nir``: the numpy CNN
of :mod:`atsnn.workloads.train_digits` with trained clip thresholds; the IF conversion stores the ANN's
parameters exactly, ``W_l * lambda_{l-1}``, ``b_l``, ``lambda_l``): IF is that file as shipped
(soft reset, ``v_init = 0.5 theta``), iLIF is :func:`atsnn.compiler.ilif.to_ilif` of it for each T.

Measured on the digits test split for T = 2, 4, 8, 16, 32:

- IF, fixed point on ``atsnn28`` (one simulation at T = 32; fixed-T results for smaller T come from
  its prefix, exactly, since membranes up to T do not depend on T), and the float IF SNN;
- iLIF, fixed point on ``atsnn28`` (16-bit membrane) where it compiles, on a 32-bit-membrane
  variant (``atsnn28-wide32``: ``numeric.membrane_bits = 32``, ``threshold_bits = 31``,
  ``at.membrane_bits = 32``) where that compiles, and the float iLIF SNN at every T (an iLIF
  program at T = 32 would need a 38-bit membrane, beyond any hardware description).

``write_ilif_report(dir)`` writes ``ilif_digits.md``, ``ilif_digits.csv``, ``ilif_digits.png`` and the
wide hardware description ``atsnn28-wide32.toml``; ``atsnn reports`` calls it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from atsnn.workloads.demo import MODEL

TS = (2, 4, 8, 16, 32)
#: the wider datapath iLIF needs beyond T = 8 (section 10 of docs/hardware.md)
WIDE = dict(numeric={"membrane_bits": 32, "threshold_bits": 31}, at={"membrane_bits": 32})
WIDE_NAME = "atsnn28-wide32"


def wide_hardware():
    from atsnn.config import load_hardware
    return load_hardware("atsnn28").replace(**WIDE, name=WIDE_NAME,
                                            description="atsnn28 with 32-bit membranes and a 31-bit threshold "
                                                        "(iLIF beyond T = 10)")


def _fixed_row(trace, T, neuron, hw_name, program) -> dict:
    from atsnn.hwsim.policies import evaluate
    r = evaluate(trace, "fixed")
    hw = program.hardware
    labels = trace.labels
    acc = float((trace.u[:, T - 1].argmax(axis=1) == labels).mean())
    mask = np.arange(trace.T) < T
    cycles = sum(d["cycles"][:, mask].sum(axis=1) for d in trace.layers.values()) + trace.input_load_cycles
    if T == trace.T:
        assert np.allclose(cycles, r.cycles)
    dyn = sum(sum(d[f"energy_{c}"][:, mask].sum(axis=1) for c in ("pe_logic", "pe_memory", "spike_buffers",
                                                                   "at_unit", "glb", "dram"))
              for d in trace.layers.values())
    energy = dyn + trace.input_load_energy_pj + trace.action.leakage_pj(cycles)
    fire_c = sum(d["fire_cycles"][:, mask].sum(axis=1) for d in trace.layers.values() if "fire_cycles" in d)
    fire_e = sum(d["fire_energy"][:, mask].sum(axis=1) for d in trace.layers.values() if "fire_energy" in d)
    rep = program.report.get("ilif", {})
    return dict(T=T, neuron=neuron, simulation="fixed point", hardware=hw_name, accuracy=acc,
                energy_uj=float(energy.mean()) * 1e-6, latency_us=float(cycles.mean()) / hw.system.clock_hz * 1e6,
                cycles=float(cycles.mean()),
                fire_cycle_share=(float(np.mean(fire_c / cycles)) if neuron == "iLIF" else None),
                fire_energy_share=(float(np.mean(fire_e / energy)) if neuron == "iLIF" else None),
                spike_map_bytes=rep.get("spike_map_bytes_pipelined"),
                spike_map_bytes_unpipelined=rep.get("spike_map_bytes_unpipelined"), note="",
                weights_coarsened=any("capped" in n for q in program.report["quantization"] for n in q["notes"]
                                      if (q.get("ilif_accumulate_steps") or 1) > 1))  # spike-fed layers


def measure(*, samples: int | None = None, Ts=TS) -> list[dict]:
    """All rows of the comparison (see the module docstring)."""
    from atsnn.config import load_hardware
    from atsnn.errors import QuantizationError
    from atsnn.compiler.float_sim import run_float
    from atsnn.compiler.ilif import to_ilif
    from atsnn.compiler.nir_import import import_nir
    from atsnn.compiler.pipeline import compile_model
    from atsnn.hwsim.datasets import digits_test_split
    from atsnn.hwsim.engine import simulate

    x, y = digits_test_split()
    if samples is not None:
        x, y = x[:samples], y[:samples]
    net = import_nir(MODEL)
    rows: list[dict] = []
    # IF: one fixed-point trace at the largest T gives every smaller T exactly
    hw = load_hardware("atsnn28")
    prog = compile_model(net, hw=hw)
    tr = simulate(prog, x, y, T=max(Ts))
    fl = run_float(net, x, max(Ts))
    for T in Ts:
        rows.append(_fixed_row(tr, T, "IF", hw.name, prog))
        rows.append(dict(T=T, neuron="IF", simulation="float", hardware="-",
                         accuracy=float((fl.u[:, T - 1].argmax(axis=1) == y).mean())))
    wide = wide_hardware()
    for T in Ts:
        il = to_ilif(net, T)
        for hwi, name in ((hw, hw.name), (wide, WIDE_NAME)):
            try:
                p = compile_model(il, hw=hwi)
            except QuantizationError as exc:
                rows.append(dict(T=T, neuron="iLIF", simulation="fixed point", hardware=name, accuracy=None,
                                 note=str(exc).split(";")[0]))
                continue
            rows.append(_fixed_row(simulate(p, x, y, T=T), T, "iLIF", name, p))
        fi = run_float(il, x, T)
        rows.append(dict(T=T, neuron="iLIF", simulation="float", hardware="-",
                         accuracy=float((fi.u[:, -1].argmax(axis=1) == y).mean())))
    return rows


def _fmt(v, f):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f.format(v)


def markdown(rows: list[dict], *, samples: int, ann_accuracy: float | None) -> str:
    from atsnn.costs import load_costs
    ct = load_costs(None)
    lines = ["# IF vs iLIF conversion of the digits CNN (seed 003)", "",
             f"Same trained ANN (`workloads/models/digits_cnn_clip.nir`, ANN test accuracy "
             f"{_fmt(ann_accuracy, '{:.1%}')}), converted to IF (rate coding, soft reset, v_init = theta/2) and "
             f"to iLIF (membrane doubled per step, accumulate and fire phases of T steps, soft reset; "
             f"docs/hardware.md sec. 10). {samples} digits test images; fixed policy (iLIF has no early exit). "
             f"Energy per inference with cost table `{ct.ref}`, latency = cycles per inference / clock "
             "(500 MHz); one accelerator's array runs every layer of both phases (the layers share the PEs).", "",
             "`atsnn28` has 16-bit membranes; `atsnn28-wide32` (file `atsnn28-wide32.toml` here) widens the PE "
             "membrane to 32 bits, the threshold to 31 and the output integrator to 32. A dash in the fixed-point "
             "columns means the program does not compile on that hardware (the reason is given); `float` rows "
             "are the float SNN of the same network (no widths, no energy).", "",
             "| T | neuron | simulation | hardware | accuracy | energy / inference | latency | fire phase: "
             "cycles / energy | spike map buffered (pipelined / not) |",
             "|---:|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        fire = ("-" if r.get("fire_cycle_share") is None
                else f"{100 * r['fire_cycle_share']:.0f} % / {100 * r['fire_energy_share']:.0f} %")
        buf = ("-" if r.get("spike_map_bytes") is None
               else f"{r['spike_map_bytes']} B / {r['spike_map_bytes_unpipelined']} B")
        acc = _fmt(r.get("accuracy"), "{:.1%}") if r.get("accuracy") is not None else f"- ({r.get('note', '')})"
        lines.append(f"| {r['T']} | {r['neuron']} | {r['simulation']} | {r['hardware']} | {acc} | "
                     f"{_fmt(r.get('energy_uj'), '{:.3f} uJ')} | {_fmt(r.get('latency_us'), '{:.2f} us')} | {fire} | "
                     f"{buf} |")
    lines += ["", "Reading the table (one test image is 0.19 points):", ""] + remarks(rows) + [""]
    return "\n".join(lines)


def remarks(rows: list[dict]) -> list[str]:
    """Observations computed from the rows (so they stay true when the report is regenerated)."""
    from atsnn.config import load_hardware
    from atsnn.compiler.ilif import max_T

    def get(neuron, sim, hw, T, key="accuracy"):
        r = next((r for r in rows if r["neuron"] == neuron and r["simulation"] == sim and r["hardware"] == hw
                  and r["T"] == T), None)
        return None if r is None else r.get(key)

    Ts = sorted({r["T"] for r in rows})
    best = {T: max((get("iLIF", "fixed point", h, T) or 0.0) for h in ("atsnn28", WIDE_NAME)) for T in Ts}
    out = ["- Accuracy (fixed point, best hardware that compiles) IF / iLIF: " + ", ".join(
        f"T = {T}: {_fmt(get('IF', 'fixed point', 'atsnn28', T), '{:.1%}')} / "
        f"{_fmt(best[T] or None, '{:.1%}')}" for T in Ts) + "."]
    both = [T for T in Ts if get("iLIF", "fixed point", "atsnn28", T) is not None]
    e_ratio = [get("iLIF", "fixed point", "atsnn28", T, "energy_uj") / get("IF", "fixed point", "atsnn28", T,
                                                                           "energy_uj") for T in both]
    l_ratio = [get("iLIF", "fixed point", "atsnn28", T, "latency_us") / get("IF", "fixed point", "atsnn28", T,
                                                                            "latency_us") for T in both]
    fire = [r["fire_cycle_share"] for r in rows if r.get("fire_cycle_share") is not None]
    pays = "more than pays for" if max(e_ratio) < 1 else "partly offsets"
    out.append(f"- At equal T on `atsnn28`, iLIF takes {min(e_ratio):.2f}-{max(e_ratio):.2f}x the energy and "
               f"{min(l_ratio):.2f}-{max(l_ratio):.2f}x the latency of IF (T = {', '.join(map(str, both))}): the "
               f"first layer's multi-bit input arrives once instead of being re-broadcast every step, which {pays} "
               "the fire phase. The fire phase (one update per hidden neuron per step plus the layer "
               f"overhead) is {100 * min(fire):.1f}-{100 * max(fire):.1f} % of the cycles: the array's work is "
               "dominated by events and synops, which the temporal separation does not add to.")
    out.append("- Pipelining the phases (fire step t of a layer feeds accumulate step t of the next) buffers one "
               "step of spike map per layer instead of T (last column); on this array it saves buffer space, not "
               "cycles, because all layers share the PEs.")
    coarse = [r["T"] for r in rows if r.get("weights_coarsened") and r["neuron"] == "iLIF"
              and r["hardware"] == "atsnn28"]
    out.append(f"- The membrane grows by T bits in the accumulate phase: `atsnn28` (16-bit) compiles iLIF up to "
               f"T = {max_T(load_hardware('atsnn28'))}"
               + (f" (at T = {', '.join(map(str, coarse))} with a capped threshold, i.e. hidden weights below full "
                  "8-bit precision)" if coarse else "")
               + f", `{WIDE_NAME}` up to T = {max_T(wide_hardware())}; beyond that the quantizer names the layer and "
               "the width it needs, and T = 32 runs only as the float SNN.")
    return out


def plot(rows: list[dict], path: Path, *, ann_accuracy: float | None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [("IF", "fixed point", "atsnn28", "IF, fixed point, atsnn28 (16-bit membrane)", "C0", "o-"),
              ("IF", "float", "-", "IF, float SNN", "C0", "o:"),
              ("iLIF", "fixed point", "atsnn28", "iLIF, fixed point, atsnn28 (16-bit membrane)", "C3", "s-"),
              ("iLIF", "fixed point", WIDE_NAME, "iLIF, fixed point, 32-bit membrane", "C1", "^-"),
              ("iLIF", "float", "-", "iLIF, float SNN", "C3", "s:")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for neuron, sim, hwn, label, colour, style in series:
        pts = [r for r in rows if r["neuron"] == neuron and r["simulation"] == sim and r["hardware"] == hwn
               and r.get("accuracy") is not None]
        if not pts:
            continue
        T = [r["T"] for r in pts]
        axes[0].plot(T, [100 * r["accuracy"] for r in pts], style, color=colour, label=label)
        if sim == "fixed point":
            axes[1].plot(T, [r["energy_uj"] for r in pts], style, color=colour, label=label)
            axes[2].plot(T, [r["latency_us"] for r in pts], style, color=colour, label=label)
    if ann_accuracy is not None:
        axes[0].axhline(100 * ann_accuracy, color="grey", lw=1, ls="--", label="ANN")
    titles = ("accuracy", "energy per inference", "latency per inference")
    ylabels = ("test accuracy (%)", "energy per inference (uJ)", "latency per inference (us)")
    for ax, title, yl in zip(axes, titles, ylabels):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(TS))
        ax.set_xticklabels([str(t) for t in TS])
        ax.set_xlabel("timesteps T")
        ax.set_ylabel(yl)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    axes[1].legend(fontsize=7, loc="upper left")
    fig.suptitle("digits CNN: IF vs iLIF conversion of the same ANN (atsnn28, 500 MHz)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_ilif_report(out_dir: str | Path, *, samples: int | None = None, Ts=TS) -> Path:
    """Write ``ilif_digits.{md,csv,png}`` and ``atsnn28-wide32.toml`` into ``out_dir``; returns the .md path."""
    import json

    import pandas as pd

    from atsnn.config import hardware_to_toml
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = measure(samples=samples, Ts=Ts)
    meta = json.loads(MODEL.with_suffix(".json").read_text())
    ann = meta.get("ann_test_accuracy")
    n = int(samples) if samples is not None else len(__import__("atsnn.hwsim.datasets", fromlist=["x"]).digits_test_split()[1])
    pd.DataFrame(rows).to_csv(out / "ilif_digits.csv", index=False)
    plot(rows, out / "ilif_digits.png", ann_accuracy=ann)
    (out / f"{WIDE_NAME}.toml").write_text(hardware_to_toml(wide_hardware()))
    path = out / "ilif_digits.md"
    path.write_text(markdown(rows, samples=n, ann_accuracy=ann) + "\n![accuracy, energy and latency against T]"
                    "(ilif_digits.png)\n")
    return path


if __name__ == "__main__":
    import sys
    print(write_ilif_report(sys.argv[1] if len(sys.argv) > 1 else "reports/ilif"))
