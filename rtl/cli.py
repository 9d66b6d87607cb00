"""``atsnn rtl export``."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("rtl", help="hardware: Verilog export")
    rs = p.add_subparsers(dest="rtl_command", metavar="ACTION")
    rs.required = True
    e = rs.add_parser("export", help="write Verilog for the RTL blocks and lint it with Verilator")
    e.add_argument("--hw", default=None, help="hardware preset or TOML file")
    e.add_argument("-o", "--out", required=True, help="output directory")
    e.add_argument("--no-lint", action="store_true")
    e.set_defaults(func=_export)


def _export(args) -> int:
    from atsnn.config import load_hardware
    from rtl.export import blocks, export_verilog
    hw = load_hardware(args.hw)
    out = export_verilog(hw, args.out, lint_files=not args.no_lint)
    for name in blocks(hw):
        print(f"{out / (name + '.v')}" + ("" if args.no_lint else "  (verilator --lint-only: clean)"))
    return 0
