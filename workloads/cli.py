"""``atsnn demo``, ``atsnn reports`` and ``atsnn topology``."""

from __future__ import annotations


def add_parser(sub) -> None:
    from atsnn.cli_options import hardware_options, output_options
    from atsnn.cli_types import seed as seed_type
    p = sub.add_parser("demo", help="compile, simulate (fixed T, DTSNN, ATSN), report and export Verilog for the "
                                    "built-in digits model")
    output_options(p, "output directory", required=False, default="out/demo")
    hardware_options(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_demo)
    r = sub.add_parser("reports", help="regenerate the committed reports/ folder from scratch")
    output_options(r, "reports directory", required=False, default="reports", short=False)
    r.set_defaults(func=_reports)
    from atsnn.workloads.topologies import TOPOLOGIES
    t = sub.add_parser("topology", help="write a CIFAR-10 or detection topology (seeded synthetic weights, "
                                        "converted to an SNN) as a NIR file")
    t.add_argument("name", choices=TOPOLOGIES)
    output_options(t, "NIR file to write", file=True)
    t.add_argument("--seed", type=seed_type, default=0)
    t.set_defaults(func=_topology)


def _topology(args) -> int:
    from atsnn.compiler.nir_export import export_nir
    from atsnn.workloads.topologies import build
    net = build(args.name, seed=args.seed)
    from atsnn.files import atomic_file
    with atomic_file(args.out, force=args.force) as tmp:
        export_nir(net, tmp)
    weights = sum(s.weight.size for l in net.layers for s in l.synapses)
    heads = [l.name for l in net.layers if l.neuron == "integrator"]
    print(f"wrote {args.out}: {net.name}, input {'x'.join(map(str, net.input_shape))}, {len(net.layers)} layers, "
          f"{weights / 1e6:.2f} M weights, output{'s' if len(heads) > 1 else ''} {', '.join(heads)} "
          "(synthetic seeded weights, thresholds balanced on synthetic images)")
    return 0


def _demo(args) -> int:
    from atsnn.workloads.demo import print_summary, run_demo
    print_summary(run_demo(args.out, hw=args.hw, quiet=args.quiet, force=args.force))
    return 0


def _reports(args) -> int:
    """Regenerate every report into ``--out`` at once (a ``reports`` output, atsnn.files rules)."""
    from pathlib import Path

    from atsnn.files import atomic_directory
    from atsnn.workloads.atsn_report import write_atsn_report
    from atsnn.workloads.demo import print_summary, run_demo
    from atsnn.workloads.ilif_digits import write_ilif_report
    from atsnn.workloads.psn_report import write_psn_report
    from atsnn.workloads.table3 import write_table3

    final = Path(args.out)
    with atomic_directory(final, kind="reports", force=args.force) as out:
        # keep the report and the tables, not the compiled program or the Verilog
        s = run_demo(out / "digits_cnn", quiet=True, keep=("run", "report"))
        lines = [f"Table-3 comparison: {write_table3(out)}",
                 f"ATSN training: {write_atsn_report(out)}",
                 f"IF vs iLIF: {write_ilif_report(out / 'ilif')}",
                 f"sliding PSN vs LIF: {write_psn_report(out / 'psn')}"]
    s["_paths"] = {k: (v.replace(str(out), str(final)) if isinstance(v, str) else v)
                   for k, v in s["_paths"].items()}
    print_summary(s)
    for line in lines:
        print(line.replace(str(out), str(final)))
    return 0
