"""``atsnn compile MODEL.nir -o DIR``: import, quantize, map; print the mapping summary."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from atsnn import cli_types as ct
    from atsnn.cli_options import hardware_options, output_options
    p = sub.add_parser("compile", help="compile a NIR model onto the array (writes a Program directory)")
    p.add_argument("model", help="NIR file (.nir)")
    output_options(p, "output Program directory")
    hardware_options(p)
    p.add_argument("--reset-mode", choices=["subtract", "to_value"], default=None)
    p.add_argument("--dt", default="auto", help="'auto' or a number (seconds per timestep)")
    p.add_argument("--comparator", choices=[">=", ">"], default=None,
                   help="spike when v >= or > the threshold (default: the writer's convention, else '>=')")
    p.add_argument("--v-init-frac", type=ct.unit_closed, default=None, help="initial membrane as a fraction of threshold")
    p.add_argument("--calib", default=None, help="NPZ with array 'x' of calibration inputs (sets the input range)")
    p.add_argument("--input-max", type=ct.positive, default=None, help="largest input value (instead of --calib)")
    p.add_argument("--logit-scale", type=ct.positive, default=1.0, help="scale of output membranes fed to the exp table")
    p.add_argument("--T", type=ct.timesteps, default=None, dest="ilif_T",
                   help="iLIF models only: timesteps to compile for (default: the T stored in the model); the "
                        "program then runs exactly T accumulate and T fire steps")
    p.add_argument("--json", action="store_true", help="print the compile report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from atsnn.errors import AtsnnError
    from atsnn.files import atomic_directory
    from atsnn.program import save_program
    from atsnn.compiler.mapping import mapping_table
    from atsnn.compiler.pipeline import compile_model

    from atsnn.files import check_output_path
    check_output_path(args.out, kind="program", force=args.force,
                      inputs=(args.model, args.calib, args.hw))
    calib = None
    if args.calib:
        try:
            with np.load(args.calib, allow_pickle=False) as z:
                calib = z["x"]
        except (OSError, KeyError, ValueError) as exc:
            raise AtsnnError(f"calibration file '{args.calib}': {exc}") from None
        if calib.ndim < 1 or calib.shape[0] < 1 or calib.dtype.kind not in "biuf":
            raise AtsnnError(f"calibration file '{args.calib}': array 'x' has shape {calib.shape} "
                             f"and dtype {calib.dtype}; it needs at least one numeric sample")
    input_max = args.input_max
    if calib is None and input_max is None:
        input_max = None
    try:
        dt = args.dt if args.dt == "auto" else float(args.dt)
    except ValueError:
        raise AtsnnError(f"--dt must be 'auto' or a number, not {args.dt!r}") from None
    try:
        program = compile_model(args.model, hw=args.hw, calib=calib, input_max=input_max, reset_mode=args.reset_mode,
                                dt=dt, comparator=args.comparator, v_init_frac=args.v_init_frac,
                                logit_scale=args.logit_scale, ilif_T=args.ilif_T)
    except AtsnnError:
        raise
    from atsnn.errors import QuantizationError
    for layer in program.layers:
        if layer.synapses and all(not s.weight.any() for s in layer.synapses):
            raise QuantizationError(f"layer '{layer.name}': every weight quantized to 0 (input scale "
                                    f"{program.input.scale:.3g} per LSB); check --input-max or --calib")
    out = Path(args.out)
    with atomic_directory(out, kind="program", force=args.force,
                          inputs=(args.model, args.calib, args.hw)) as tmp:
        save_program(program, tmp)
    if args.json:
        print(json.dumps(program.report, indent=1, default=str))
        return 0
    hw = program.hardware
    print(f"compiled {program.name} for {hw.name} ({hw.pe_count} PEs + AT unit) -> {out}")
    writer = program.report["decisions"].get("writer")
    if isinstance(writer, dict) and writer.get("name"):
        print(f"  written by {writer['name']}: {writer.get('reason', '')}; its conventions applied "
              "(--dt, --reset-mode, --comparator override them)")
    for d in program.report["decisions"].get("reset", []):
        print(f"  reset of layer {d['layer']}: {d['reset_mode']} (decided by {d['rule']})")
    print(f"  dt = {program.report['decisions'].get('dt')}, comparator {program.report['decisions'].get('comparator')}, "
          f"input scale {program.input.scale:.6g} per LSB")
    print(f"  early exit on the AT unit: {'yes' if program.early_exit else 'no'}")
    if "ilif" in program.report:
        print(f"  iLIF program for T = {program.report['ilif']['T']}: accumulate and fire phases of T steps, "
              "fixed T only")
    for q in program.report.get("quantization", []):
        if "psn" in q:  # sliding PSN (docs/hardware.md sec. 11)
            d = q["psn"]
            print(f"  sliding PSN layer {q['layer']}: k = {d['k']}, taps {d['taps']}, fire (H >> {d['shift']}) >= "
                  f"{q['threshold']}; scale set by the {d['scale_rule']} (X_max {d['current_max']:.4g} from "
                  f"{d['current_max_source']})")
    if program.input.encoding == "sequence":
        print(f"  sequence input: one frame of shape {tuple(program.input.shape)} per timestep")
    table = mapping_table(program.layers)
    with __import__("pandas").option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False))
    if "agreement_inputs" in program.report:
        print(f"  quantization check on {program.report['agreement_inputs']}")
    for row in program.report.get("agreement", []):
        if "output_agreement" in row:
            print(f"  float vs fixed, output {row['layer']}: same class on {100 * row['output_agreement']:.1f} % of "
                  f"check inputs")
        else:
            print(f"  float vs fixed, layer {row['layer']}: spike-count correlation "
                  f"{row['spike_count_correlation']:.3f}, fixed/float spike ratio {row['spike_count_ratio'] or 0:.3f}")
    for w in program.report.get("warnings", []):
        print(f"  warning: {w}")
    return 0
