"""``atsnn rtl export`` and ``atsnn rtl synth``."""

from __future__ import annotations


def add_parser(sub) -> None:
    from atsnn.cli_options import hardware_options, output_options
    p = sub.add_parser("rtl", help="hardware: Verilog export with Verilator lint, Yosys FPGA resource report")
    rs = p.add_subparsers(dest="rtl_command", metavar="ACTION")
    rs.required = True
    e = rs.add_parser("export", help="write Verilog for the RTL blocks (PE, iLIF PE, PSN PE, AT unit) "
                                                "and lint it with Verilator")
    hardware_options(e)
    output_options(e, "output directory for the Verilog")
    e.add_argument("--no-lint", action="store_true")
    e.add_argument("--program", default=None, help="compiled Program directory: also write the array top for it")
    e.set_defaults(func=_export)
    y = rs.add_parser("synth", help="Yosys synth_xilinx resource report (PE, iLIF PE, PSN PE, AT unit, array) "
                                             "against an XC7A100T, with the smallest 7-series part each row fits")
    hardware_options(y)
    y.add_argument("--program", default=None,
                   help="compiled Program directory: synthesise the array top generated for it, on the program's "
                        "hardware (without it the array row is extrapolated from the blocks)")
    output_options(y, "directory for synth.md and synth.csv", required=False)
    y.set_defaults(func=_synth)


def _synth(args) -> int:
    from pathlib import Path

    import pandas as pd

    from atsnn.config import load_hardware
    from atsnn.errors import RtlError
    from atsnn.program import load_program
    from atsnn.rtl.synth import report_markdown, synth_report
    program = load_program(args.program) if args.program else None
    if program is not None:
        hw = program.hardware
        if args.hw is not None and load_hardware(args.hw) != hw:
            raise RtlError(f"--hw {args.hw}: program '{program.name}' is compiled for hardware '{hw.name}' "
                           "(omit --hw; the array is synthesised on the program's hardware)")
    else:
        hw = load_hardware(args.hw)
    rows = synth_report(hw, program)
    md = report_markdown(hw, rows)
    print(md)
    if args.out:
        from atsnn.files import atomic_directory
        out = Path(args.out)
        with atomic_directory(out, kind="synth", inputs=(args.program, args.hw),
                              force=args.force) as tmp:
            (tmp / "synth.md").write_text(md)
            pd.DataFrame(rows).to_csv(tmp / "synth.csv", index=False)
        print(f"written to {out / 'synth.md'} and {out / 'synth.csv'}")
    return 0


def _export(args) -> int:
    from atsnn.config import load_hardware
    from atsnn.rtl.export import blocks, export_verilog
    from atsnn.program import load_program
    from pathlib import Path

    from atsnn.files import atomic_directory, check_output_path
    check_output_path(args.out, kind="rtl", inputs=(args.program, args.hw), force=args.force)
    program = load_program(args.program) if args.program else None
    hw = program.hardware if program is not None else load_hardware(args.hw)
    out = Path(args.out)
    with atomic_directory(out, kind="rtl", inputs=(args.program, args.hw),
                          force=args.force) as tmp:
        export_verilog(hw, tmp, lint_files=not args.no_lint, program=program)
    names = list(blocks(hw)) + (["atsnn_array"] if program is not None else [])
    for name in names:
        print(f"{out / (name + '.v')}" + ("" if args.no_lint else "  (verilator --lint-only: clean)"))
    return 0
