"""``atsnn demo`` and ``atsnn reports``."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="compile, simulate (fixed T, DTSNN, ATSN), report and export Verilog for the "
                                    "built-in digits model")
    p.add_argument("-o", "--out", default="out/demo", help="output directory (default out/demo)")
    p.add_argument("--hw", default=None, help="hardware preset or TOML file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_demo)
    r = sub.add_parser("reports", help="regenerate the committed reports/ folder from scratch")
    r.add_argument("--out", default="reports")
    r.set_defaults(func=_reports)


def _demo(args) -> int:
    from workloads.demo import print_summary, run_demo
    print_summary(run_demo(args.out, hw=args.hw, quiet=args.quiet))
    return 0


def _reports(args) -> int:
    import shutil
    from pathlib import Path

    from workloads.demo import print_summary, run_demo
    out = Path(args.out)
    target = out / "digits_cnn"
    if target.exists():
        shutil.rmtree(target)
    s = run_demo(target, quiet=True)
    # keep the report and the tables, not the compiled program or the Verilog
    for sub in ("program", "verilog"):
        shutil.rmtree(target / sub, ignore_errors=True)
    print_summary(s)
    from workloads.table3 import write_table3
    print(f"Table-3 comparison: {write_table3(out)}")
    return 0
