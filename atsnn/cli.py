"""``atsnn`` command line: compile, simulate, report, rtl export/synth, demo, config show.

Each stage owns its sub-command in a light ``cli`` module that registers a
parser (``add_parser(subparsers)``) and sets ``func``; heavy imports happen
inside ``func``. User errors (:class:`atsnn.errors.AtsnnError`) print one
line ``error: ...`` on stderr and exit with code 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from atsnn.errors import AtsnnError

#: modules that contribute sub-commands, in help order
COMMAND_MODULES = ("atsnn.compiler.cli", "atsnn.hwsim.cli", "atsnn.report.cli", "atsnn.rtl.cli", "atsnn.workloads.cli",
                   "atsnn.sweep.cli")


def _config_show(args: argparse.Namespace) -> int:
    from atsnn.config import hardware_to_toml, load_hardware
    from atsnn.costs import load_costs

    hw = load_hardware(args.hw)
    costs = load_costs(args.costs, dram=args.dram)
    print(f"# hardware description: {hw.name}")
    if hw.description:
        print(f"# {hw.description}")
    print(f"# derived: {hw.pe_count} PEs + {hw.array.at_units} AT unit, clock period "
          f"{hw.clock_period_s * 1e9:g} ns, membrane [{hw.membrane_min}, {hw.membrane_max}], "
          f"GLB {hw.memory.glb_bytes} B")
    print(hardware_to_toml(hw))
    print(f"# cost table: {costs.ref}, {costs.technology_nm} nm, characterised at "
          f"{costs.characterised_clock_hz / 1e6:g} MHz")
    if costs.description:
        print(f"# {costs.description}")
    width = max(len(f"{r['component']}.{r['action']}") for r in costs.rows())
    for r in costs.rows():
        key = f"{r['component']}.{r['action']}" if r["action"] else r["component"]
        port = f" per {r['port_bytes']} B" if r["port_bytes"] else (" per bit" if r["component"] == "dram" else "")
        mark = "  [selected]" if r["component"] == "dram" and r["action"] == costs.dram else ""
        print(f"{r['kind']:8s} {key:<{width}s} {r['value']:>12.6g} {r['unit']}{port}{mark}  | {r['source']}")
    return 0


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``error:`` line naming the command (exit 2)."""

    def error(self, message: str):  # noqa: D102 - argparse API
        msg = " ".join(message.split())
        self.exit(2, f"error: {self.prog}: {msg} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="atsnn", description="atsnn: compile, simulate, report and build "
                                     "adaptive-timestep SNN accelerators")
    from atsnn import __version__
    parser.add_argument("--version", action="version", version=f"atsnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == mod_name or mod_name.startswith(exc.name + ".")):
                continue
            raise
        mod.add_parser(sub)
    cfg = sub.add_parser("config", help="show the hardware description and cost table")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", parser_class=OneLineParser)
    cfg_sub.required = True
    show = cfg_sub.add_parser("show", help="print a hardware preset and a cost table with sources")
    from atsnn.cli_options import cost_options, hardware_options
    hardware_options(show)
    cost_options(show)
    show.set_defaults(func=_config_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error (one line, code 2) or --help/--version (code 0)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        rc = args.func(args)
    except AtsnnError as exc:
        msg = " ".join(str(exc).split("\n"))
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
