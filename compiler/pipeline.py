"""The compile pipeline: import -> quantize -> map -> Program.

``compile_model(source, hw=..., calib=..., ...)`` accepts a ``.nir`` path, an
in-memory ``nir.NIRGraph`` or a :class:`atsnn.compiler.ir.FloatNetwork`, and
returns a validated :class:`atsnn.program.Program` whose ``report`` records
every decision (reset rule, dt, comparator, scales, leak errors, mapping).
It writes nothing; :func:`atsnn.program.save_program` does.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from atsnn.config import HardwareConfig, load_hardware
from atsnn.errors import MappingError, QuantizationError
from atsnn.program import AtParams, Program, validate_program
from atsnn.compiler.ir import FloatNetwork
from atsnn.compiler.mapping import map_program_layers, mapping_table
from atsnn.compiler.quantize import choose_input_scale, quantize_network


def compile_model(
    source: Any,
    *,
    hw: HardwareConfig | str | Path | None = None,
    calib: np.ndarray | None = None,
    input_max: float | None = None,
    reset_mode: str | None = None,
    dt: Any = "auto",
    comparator: str | None = None,
    v_init_frac: float | None = None,
    logit_scale: float = 1.0,
    name: str | None = None,
    ilif_T: int | None = None,
    measure: bool = True,
) -> Program:
    """Compile a model onto the hardware; see the module docstring.

    ``ilif_T`` rebuilds an iLIF model for that many timesteps (default: the T stored in the model).
    ``measure`` runs the float network and the program on the calibration data (or on inputs drawn
    from the declared range) and records their agreement, with a warning below
    :data:`AGREEMENT_WARN` (:func:`agreement_warnings`).
    """
    if not isinstance(hw, HardwareConfig):
        hw = load_hardware(hw)
    if isinstance(source, FloatNetwork):
        net = source
    else:
        from atsnn.compiler.nir_import import import_nir

        net = import_nir(
            source, reset_mode=reset_mode, dt=dt, comparator=comparator, v_init_frac=v_init_frac
        )
    from atsnn.compiler.ilif import prepare as ilif_prepare

    net = ilif_prepare(net, T=ilif_T)
    if input_max is None and calib is None:
        # default input range: values normalised to [0, 1] (recorded in the report)
        input_max = float(net.decisions.get("input_max", 1.0))
    input_scale = choose_input_scale(net, hw, calib, input_max)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layers, inp, qreport = quantize_network(net, hw, input_scale=input_scale, calib=calib)
    early_exit = map_program_layers(layers, net.output, hw)
    from atsnn.ilif import network_T

    ilif = network_T(layers)
    if ilif is not None:  # iLIF: the output exists only after all T steps (sec. 10)
        early_exit = False
    at = None
    if early_exit:
        from atsnn.hwsim.reference import exp_constants

        out = next(l for l in layers if l.name == net.output)
        try:
            mult, d_clip = exp_constants(hw, out.scale, logit_scale)
        except ValueError as exc:
            raise QuantizationError(
                f"output layer '{out.name}': {exc}; raise logit_scale"
            ) from None
        at = AtParams(exp_mult=mult, d_clip=d_clip, logit_scale=float(logit_scale))
    report = dict(
        source=str(net.decisions.get("source", net.name)),
        decisions=_jsonable(net.decisions),
        quantization=qreport,
        mapping=mapping_table(layers).to_dict(orient="records"),
        warnings=[str(w.message) for w in caught],
        input_scale=input_scale,
        early_exit=early_exit,
        synthetic_weights=bool(net.decisions.get("synthetic_weights", False)),
    )
    if ilif is not None:
        from atsnn.compiler.ilif import report as ilif_report

        report["ilif"] = ilif_report(layers, hw)
    heads = [l.name for l in layers if l.neuron == "integrator"]
    if len(heads) > 1:
        report["warnings"].append(
            f"{len(heads)} output heads ({', '.join(heads)}): they run on the PEs and the "
            "program has no early exit (fixed T only)"
        )
    elif not early_exit and ilif is None:
        report["warnings"].append(
            f"output layer '{net.output}' does not fit the AT unit: no early exit"
        )
    program = Program(
        name=name or net.name,
        hardware=hw,
        input=inp,
        layers=layers,
        output=net.output,
        early_exit=early_exit,
        at=at,
        report=report,
    )
    validate_program(program)
    n_weights = sum(int(s.weight.size) for l in layers for s in l.synapses)
    if measure and n_weights > AGREEMENT_MAX_WEIGHTS:
        report["agreement_inputs"] = (
            f"not measured: {n_weights} weights exceed the quick check's "
            f"{AGREEMENT_MAX_WEIGHTS}; compare with 'atsnn simulate' on real data"
        )
    elif net.input_encoding in ("direct", "sequence") and measure:
        x_check, check_source = check_inputs(net, program, calib, input_max)
        report["agreement_inputs"] = check_source
        report["agreement"] = agreement(net, program, x_check)
        lost = agreement_warnings(report["agreement"], net.output)
        if lost:

            def recompile(wider: HardwareConfig) -> Program:
                return compile_model(
                    net,
                    hw=wider,
                    calib=calib,
                    input_max=input_max,
                    logit_scale=logit_scale,
                    name=name,
                    measure=False,
                )

            width = width_that_keeps(net, hw, recompile, x_check)
            report["agreement_width"] = width
            if width is not None:
                lost = [
                    lost[0]
                    + f" (numeric.weight_bits = {width} keeps {100 * AGREEMENT_WARN:g} % on these "
                    "inputs)"
                ]
        report["warnings"].extend(lost)
        for row in report["agreement"]:
            if row["saturation_per_neuron_step"] > 0.01:
                report["warnings"].append(
                    f"layer '{row['layer']}' saturates on "
                    f"{100 * row['saturation_per_neuron_step']:.1f} % of neuron-steps"
                    + (
                        " (iLIF: includes the fire steps of neurons at or above the threshold, "
                        "which saturate by design: the ANN's clip)"
                        if ilif is not None and row["layer"] != net.output
                        else ""
                    )
                )
    return program


AGREEMENT_SAMPLES = 64
AGREEMENT_T = 8
#: below this fraction of calibration inputs classified alike, a compile warns
AGREEMENT_WARN = 0.99
#: programs with more weights than this skip the compile-time check (it simulates them exactly)
AGREEMENT_MAX_WEIGHTS = 2_000_000


def check_inputs(net: FloatNetwork, program: Program, calib, input_max) -> tuple[np.ndarray, str]:
    """The inputs that measure what quantization costs, and where they come from: the first
    :data:`AGREEMENT_SAMPLES` calibration samples, else as many drawn uniformly from the declared input
    range ``[0, input_max]`` (seed 0; sequence inputs: :data:`AGREEMENT_T` frames)."""
    if calib is not None:
        x = np.asarray(calib)[:AGREEMENT_SAMPLES]
        return x, f"{len(x)} calibration samples"
    top = float(
        input_max if input_max is not None else program.input.scale * (2**program.input.bits - 1)
    )
    rng = np.random.default_rng(0)
    shape = tuple(net.input_shape)
    if net.input_encoding == "sequence":
        shape = (AGREEMENT_T,) + shape
    x = rng.uniform(0.0, top, (AGREEMENT_SAMPLES,) + shape)
    return x, f"{AGREEMENT_SAMPLES} inputs drawn uniformly from the declared range [0, {top:g}]"


#: weight widths tried, narrowest first, when a compile loses agreement
WIDER_WEIGHT_BITS = (10, 12, 16)


def width_that_keeps(
    net: FloatNetwork, hw: HardwareConfig, recompile, x: np.ndarray
) -> int | None:
    """The narrowest weight width of :data:`WIDER_WEIGHT_BITS` above the preset's whose program
    (``recompile(hardware)``) classifies at least :data:`AGREEMENT_WARN` of ``x`` like the float
    network; ``None`` if none does or none is a valid hardware description."""
    from atsnn.errors import AtsnnError

    for bits in WIDER_WEIGHT_BITS:
        if bits <= hw.numeric.weight_bits:
            continue
        try:
            program = recompile(hw.replace(numeric={"weight_bits": bits}))
        except AtsnnError:
            continue
        out = next(r for r in agreement(net, program, x) if "output_agreement" in r)
        if out["output_agreement"] >= AGREEMENT_WARN:
            return bits
    return None


def agreement_warnings(rows: list[dict[str, Any]], output: str) -> list[str]:
    """One warning when the output agreement is below :data:`AGREEMENT_WARN`, naming the layer whose
    spike counts correlate least with the float network's and the knobs that help."""
    out = next((r for r in rows if r["layer"] == output and "output_agreement" in r), None)
    if out is None or out["output_agreement"] >= AGREEMENT_WARN:
        return []
    hidden = [r for r in rows if "spike_count_correlation" in r]
    worst = min(hidden, key=lambda r: r["spike_count_correlation"], default=None)
    where = (
        f"; layer '{worst['layer']}' loses most (spike-count correlation "
        f"{worst['spike_count_correlation']:.3f})"
        if worst is not None
        else ""
    )
    return [
        f"fixed point classifies {100 * out['output_agreement']:.1f} % of the check inputs like the float "
        f"network{where}; wider weights (numeric.weight_bits), a wider preset or calibration data "
        "(--calib) would help"
    ]


def agreement(net: FloatNetwork, program: Program, x: np.ndarray) -> list[dict[str, Any]]:
    """Per layer: float SNN vs fixed-point program on calibration inputs rounded to the program's input
    grid (T = 8; a sequence program runs min(8, frames) steps, an iLIF program its compiled T).

    ``spike_count_correlation`` is the Pearson correlation of per-sample, per-timestep spike counts;
    ``spike_count_ratio`` fixed / float; the output layer reports ``output_agreement`` (same argmax).
    """
    from atsnn.compiler.float_sim import run_float
    from atsnn.hwsim.engine import simulate

    from atsnn.ilif import program_T

    T = program_T(program) or AGREEMENT_T
    if program.input.encoding == "sequence":
        T = min(T, int(np.asarray(x).shape[1]))
    # the float network sees the program's input grid, so the figures are what quantizing the network
    # costs (the input rounding is common to both)
    top = 2**program.input.bits - 1
    x_grid = (
        np.clip(np.rint(np.asarray(x, dtype=np.float64) / program.input.scale), 0, top)
        * program.input.scale
    )
    fl = run_float(net, x_grid, T)
    tr = simulate(program, x_grid, T=T)
    rows = []
    for layer in program.layers:
        d = tr.layers[layer.name]
        sat = float((d["sat_hi"] + d["sat_lo"]).mean() / layer.neurons)
        if layer.neuron == "integrator":
            same = float((fl.u[:, -1].argmax(axis=1) == tr.u[:, -1].argmax(axis=1)).mean())
            rows.append(
                dict(layer=layer.name, output_agreement=same, saturation_per_neuron_step=sat)
            )
            continue
        a = fl.spike_counts[layer.name].ravel().astype(np.float64)
        b = d["spikes"].ravel().astype(np.float64)
        corr = (
            float(np.corrcoef(a, b)[0, 1])
            if a.std() > 0 and b.std() > 0
            else float(np.array_equal(a, b))
        )
        rows.append(
            dict(
                layer=layer.name,
                spike_count_correlation=corr,
                spike_count_ratio=float(b.sum() / a.sum()) if a.sum() > 0 else None,
                saturation_per_neuron_step=sat,
            )
        )
    return rows


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x
