"""The options every ``atsnn`` sub-command shares, declared once as argparse option groups.

A command calls the groups it needs; the flags, their help and their checks are the same
everywhere: ``--hw`` (hardware preset or TOML file), ``--costs``/``--dram`` (cost table),
``-o/--out`` and ``--force`` (the output rules of the README: a new or empty directory, or an
earlier output of the same kind; ``--force`` replaces a foreign one, never an input).
"""

from __future__ import annotations

import argparse

from atsnn import cli_types as ct

DEFAULT_HW = "atsnn28"
DEFAULT_COSTS = "sata28-500mhz"


def hardware_options(p: argparse.ArgumentParser) -> None:
    """``--hw PRESET_OR_FILE``."""
    g = p.add_argument_group("hardware")
    g.add_argument(
        "--hw",
        default=None,
        metavar="PRESET_OR_FILE",
        help=f"hardware preset name or TOML file (default {DEFAULT_HW})",
    )


def cost_options(p: argparse.ArgumentParser) -> None:
    """``--costs PRESET_OR_FILE`` and ``--dram NAME``."""
    g = p.add_argument_group("cost table")
    g.add_argument(
        "--costs",
        default=None,
        metavar="PRESET_OR_FILE",
        help=f"cost table preset name or TOML file (default {DEFAULT_COSTS})",
    )
    g.add_argument(
        "--dram",
        type=ct.non_empty,
        default=None,
        metavar="NAME",
        help="DRAM technology of the cost table (default: the table's own)",
    )


def output_options(
    p: argparse.ArgumentParser,
    what: str,
    *,
    required: bool = True,
    default: str | None = None,
    default_help: str | None = None,
    short: bool = True,
    file: bool = False,
) -> None:
    """``-o/--out`` for ``what`` (``default`` when not ``required``; ``default_help`` describes a
    default the command derives) and ``--force``; ``file``: the output is one file, which
    ``--force`` may replace."""
    g = p.add_argument_group("output")
    flags = ("-o", "--out") if short else ("--out",)
    shown = default_help or default
    help_ = what if shown is None else f"{what} (default {shown})"
    g.add_argument(*flags, required=required, default=default, help=help_)
    g.add_argument(
        "--force",
        action="store_true",
        help="replace an existing file"
        if file
        else "replace an existing directory that atsnn did not write (never an input)",
    )
