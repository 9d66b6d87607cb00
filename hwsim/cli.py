"""``atsnn simulate PROGRAM_DIR --data digits|FILE.npz --policy ... -o RUN_DIR``."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from atsnn import cli_types as ct
    from atsnn.cli_options import cost_options, output_options
    p = sub.add_parser("simulate", help="simulate a compiled Program: accuracy, timesteps, energy, latency, FPS")
    p.add_argument("program", help="compiled Program directory (from 'atsnn compile')")
    p.add_argument("--data", default=None,
                   help="'digits', 'digits-seq' (sequence programs; the default for them) or an .npz with arrays x "
                        "(and y); default 'digits'")
    p.add_argument("--policy", choices=["fixed", "dtsnn", "atsn", "all"], default="all")
    p.add_argument("--T", type=ct.timesteps, default=None,
                   help="maximum timesteps (default 8; an iLIF program runs exactly the T it was compiled for)")
    p.add_argument("--theta", type=ct.unit_open_closed, default=0.3, help="DTSNN entropy threshold in (0, 1]")
    p.add_argument("--cl-init", type=ct.unit_open_closed, default=0.999, help="ATSN CL_init in (0, 1]")
    p.add_argument("--tau-cl", type=ct.unit_open_closed, default=0.999, help="ATSN tau_CL in (0, 1]")
    p.add_argument("--samples", type=ct.count, default=None, help="use the first N samples")
    cost_options(p)
    p.add_argument("--sweep", action="store_true", help="also sweep theta and the (CL_init, tau_CL) grid")
    output_options(p, "run directory for the tables")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--clip", action="store_true",
                   help="clip input values above the program's input range (default: refuse them)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    e = sub.add_parser("estimate", help="analytic mode: cycles, energy and FPS from firing rates alone (no data)")
    e.add_argument("program", help="compiled Program directory")
    e.add_argument("--rate", type=ct.unit_closed, default=None, help="one firing rate for every spiking layer, in [0, 1]")
    e.add_argument("--rates", default=None, help="JSON file {layer: rate}")
    e.add_argument("--data", default=None,
                   help="measure the rates instead: run the program functionally (exact fixed point, no cycle "
                        "tables, any size) on 'digits', 'synthetic' or an .npz")
    e.add_argument("--samples", type=ct.count, default=2, help="samples for --data (default 2)")
    e.add_argument("--measure-T", type=ct.timesteps, default=8, help="timesteps of the --data run (default 8)")
    e.add_argument("--input-events", type=ct.non_negative, default=None,
                   help="input events per timestep (default: measured with --data, else half the input bits of "
                        "every element set)")
    e.add_argument("--T", type=ct.timesteps, nargs="+", default=[4], help="one or more timestep counts")
    cost_options(e)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=run_estimate)


def run_estimate(args) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from atsnn.errors import SimulationInputError
    from atsnn.program import load_program
    from atsnn.hwsim.analytic import estimate

    program = load_program(args.program)
    from atsnn import ilif
    if ilif.is_ilif(program):
        raise SimulationInputError(f"program '{program.name}' is an iLIF program (layer "
                                   f"'{ilif.first_ilif_layer(program)}'): the analytic mode does not model its two "
                                   "phases; use 'atsnn simulate'")
    spiking = [l.name for l in program.layers if l.neuron != "integrator"]
    ev = args.input_events
    source = None
    if sum(x is not None for x in (args.rates, args.rate, args.data)) > 1:
        raise SimulationInputError("give only one of --rate, --rates and --data")
    if args.data is not None:
        from atsnn.hwsim.datasets import load_data
        from atsnn.hwsim.functional import run_functional
        if args.samples < 1:
            raise SimulationInputError(f"--samples must be >= 1, not {args.samples}")
        x, _, dname = load_data(args.data, tuple(program.input.shape), synthetic_samples=args.samples,
                                encoding=program.input.encoding)
        run = run_functional(program, x[:args.samples], T=args.measure_T)
        rates = run.rates(program)
        if ev is None:
            ev = float(run.input_events.mean())
        source = f"rates measured on {min(args.samples, len(x))} samples of {dname} at T={args.measure_T}"
    elif args.rates:
        try:
            rates = {str(k): float(v) for k, v in json.loads(Path(args.rates).read_text()).items()}
        except (OSError, ValueError, AttributeError) as exc:
            raise SimulationInputError(f"--rates file '{args.rates}': {exc}") from None
    elif args.rate is not None:
        rates = {n: args.rate for n in spiking}
    else:
        raise SimulationInputError("give --rate, --rates or --data")
    for k, v in rates.items():
        if not 0.0 <= v <= 1.0:
            raise SimulationInputError(f"--rate for layer '{k}' must be in [0, 1], not {v}")
    if ev is None:
        ev = int(np.prod(program.input.shape)) * program.input.bits / 2
    rows = []
    from atsnn.costs import load_costs
    costs = load_costs(args.costs, dram=args.dram)
    for T in args.T:
        a = estimate(program, rates, T, input_events_per_timestep=ev, costs=costs)
        rows.append(dict(T=T, cycles_per_inference=a.cycles_per_inference, rates_source=source or "given",
                         rates=rates, input_events_per_timestep=ev, sampled_statistics=a.sampled,
                         energy_per_inference_uj=a.energy_per_inference_pj * 1e-6,
                         latency_per_inference_ms=a.cycles_per_inference / program.hardware.system.clock_hz * 1e3,
                         fps=a.fps, energy_by_component_uj={k: v * 1e-6 for k, v in a.energy_by_component_pj.items()}))
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=1))
        return 0
    print(f"analytic estimate for {program.name} on {program.hardware.name} (fixed T, uniform events)")
    if source:
        print(f"  {source}: mean rate {sum(rates.values()) / max(len(rates), 1):.3f}, "
              f"{ev:.0f} input events per timestep")
    for r in rows:
        print(f"T={r['T']:5d}  {r['energy_per_inference_uj']:12.4g} uJ  {r['latency_per_inference_ms']:10.4g} ms  "
              f"{r['fps']:10.4g} FPS")
    return 0


def sweep_grids():
    import numpy as np
    thetas = np.round(np.linspace(0.05, 1.0, 20), 4)
    cl = np.round(np.linspace(0.9950, 0.9998, 20), 5)  # seed 001 sec. 3.5 range
    return thetas, cl, cl


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from atsnn.errors import SimulationInputError
    from atsnn.program import load_program
    from atsnn.hwsim.datasets import load_data
    from atsnn.hwsim.engine import simulate
    from atsnn.hwsim.policies import check_params, evaluate, sweep_atsn, sweep_dtsnn
    from atsnn.hwsim.results import write_run

    if args.T is not None and args.T < 1:
        raise SimulationInputError(f"--T must be >= 1, not {args.T}")
    from atsnn.files import check_output_path
    check_output_path(args.out, kind="run", force=args.force,
                      inputs=(args.program, args.data, args.costs))
    program = load_program(args.program)
    from atsnn import ilif
    if ilif.is_ilif(program):  # no early exit: only the fixed policy, at the compiled T (docs/hardware.md sec. 10)
        if args.policy in ("dtsnn", "atsn") or args.sweep:
            raise ilif.early_exit_error(program, "an exit policy" if not args.sweep else "a policy sweep")
        args.policy = "fixed"
    args.T = args.T if args.T is not None else (ilif.program_T(program) or 8)
    policies = ["fixed", "dtsnn", "atsn"] if args.policy == "all" else [args.policy]
    heads = [l.name for l in program.layers if l.neuron == "integrator"]
    if len(heads) > 1:
        if args.policy in ("dtsnn", "atsn"):
            raise SimulationInputError(f"program '{program.name}' has {len(heads)} output heads "
                                       f"({', '.join(heads)}); exit policies need one classifier output: use "
                                       "--policy fixed")
        policies = ["fixed"]
        if args.sweep:
            raise SimulationInputError(f"program '{program.name}' has {len(heads)} output heads; --sweep needs one "
                                       "classifier output")
    if not program.early_exit and "atsn" in policies:
        if args.policy == "atsn":
            raise SimulationInputError(f"program '{program.name}' has no AT unit for its output layer; "
                                       "ATSN needs early exit (use --policy fixed or dtsnn)")
        policies.remove("atsn")
    for p in policies:
        check_params(p, args.theta, args.cl_init, args.tau_cl)
    if args.data is None:
        args.data = "digits-seq" if program.input.encoding == "sequence" else "digits"
    x, y, dname = load_data(args.data, tuple(program.input.shape), encoding=program.input.encoding)
    if args.samples is not None:
        if args.samples < 1:
            raise SimulationInputError(f"--samples must be >= 1, not {args.samples}")
        if y is not None and len(y) != len(x):
            raise SimulationInputError(f"--data {args.data}: {len(y)} labels for {len(x)} samples; "
                                       "give one label per sample")
        x, y = x[:args.samples], (None if y is None else y[:args.samples])
    if args.clip and program.input.encoding != "spikes":
        from atsnn.hwsim.inputs import clip_to_program_range
        x, over = clip_to_program_range(program, x)
        print(f"note: --clip: {over} input values above the program's range were clipped",
              file=sys.stderr)
    trace = simulate(program, x, y, T=args.T, costs=args.costs, dram=args.dram,
                     progress=not args.quiet and sys.stderr.isatty())
    results = [evaluate(trace, p, theta=args.theta, cl_init=args.cl_init, tau_cl=args.tau_cl)
               if p != "fixed" else evaluate(trace, "fixed") for p in policies]
    sweeps = None
    if args.sweep:
        th, a, b = sweep_grids()
        sweeps = (sweep_dtsnn(trace, th), sweep_atsn(trace, a, b) if program.early_exit else None)
    summary = write_run(args.out, trace, results, dataset=dname, sweeps=sweeps, force=args.force,
                        inputs=(args.program, args.data, args.costs))
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
        return 0
    print(f"{program.name} on {summary['hardware']} ({trace.costs.ref}), {trace.samples} samples of {dname}, T <= {args.T}")
    print(f"{'policy':8s} {'accuracy':>9s} {'avg T':>6s} {'energy/inf':>12s} {'latency':>10s} {'FPS':>9s} {'saved':>7s}")
    for p, s in summary["policies"].items():
        acc = "-" if s["accuracy"] is None else f"{100 * s['accuracy']:.2f}%"
        saved = "-" if s["energy_saved_vs_fixed_pct"] is None else f"{s['energy_saved_vs_fixed_pct']:.1f}%"
        print(f"{p:8s} {acc:>9s} {s['avg_timestep']:6.2f} {s['energy_per_inference_uj']:9.3f} uJ "
              f"{s['latency_per_inference_ms'] * 1e3:7.2f} us {s['fps']:9.0f} {saved:>7s}")
    print(f"tables written to {args.out}")
    return 0
