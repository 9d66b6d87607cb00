"""Typed, range-checked command-line values (argparse ``type=`` functions).

Each factory returns a parser that raises :class:`argparse.ArgumentTypeError` with the allowed
range, so a bad value is a one-line usage error at parse time, before any work is done.
"""

from __future__ import annotations

import argparse
import math

#: largest timestep count a command accepts (the run's trace grows with T x samples x neurons)
MAX_TIMESTEPS = 4096


def int_range(lo: int, hi: int | None = None):
    """An integer in ``[lo, hi]`` (``hi`` None: no upper bound)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < lo or (hi is not None and v > hi):
            span = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"{v} is outside {span}")
        return v
    parse.__name__ = "integer"
    return parse


def float_range(lo: float, hi: float | None = None, *, lo_open: bool = False,
                hi_open: bool = False):
    """A finite number in the interval from ``lo`` to ``hi`` (open ends as flagged)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        bad = (not math.isfinite(v) or (v <= lo if lo_open else v < lo)
               or (hi is not None and (v >= hi if hi_open else v > hi)))
        if bad:
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            span = f"{left}{lo:g}, {hi:g}{right}" if hi is not None else f"{left}{lo:g}, inf)"
            raise argparse.ArgumentTypeError(f"{text} is not a finite number in {span}")
        return v
    parse.__name__ = "number"
    return parse


def non_empty(text: str) -> str:
    """A non-empty string (a preset name, file or technology)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


timesteps = int_range(1, MAX_TIMESTEPS)
count = int_range(1)
seed = int_range(0, 2**32 - 1)
unit_open_closed = float_range(0.0, 1.0, lo_open=True)
unit_closed = float_range(0.0, 1.0)
positive = float_range(0.0, lo_open=True)
non_negative = float_range(0.0)
