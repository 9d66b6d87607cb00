"""``atsnn report RUN_DIR [-o OUT]``."""

from __future__ import annotations


def add_parser(sub) -> None:
    from atsnn.cli_options import output_options
    p = sub.add_parser("report", help="build summary.md, index.html and figures from a simulation run directory")
    p.add_argument("run_dir", help="directory written by 'atsnn simulate'")
    output_options(p, "report directory", required=False, default_help="RUN_DIR/report")
    p.add_argument("--layer", default=None, help="layer for the PE utilisation heatmap (default: busiest)")
    p.set_defaults(func=lambda a: _run(a))


def _run(args) -> int:
    from atsnn.report.build import build_report
    out = build_report(args.run_dir, args.out, layer=args.layer, force=args.force)
    print(f"report written to {out / 'index.html'} and {out / 'summary.md'}")
    return 0
