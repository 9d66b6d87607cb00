"""Shared cocotb set-up: settings from the environment, clock and synchronous reset."""

import os

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from atsnn.config import load_hardware


def settings(prefix: str, count_key: str, count_default: int):
    """(hardware, count, profile, rng) from HW_PRESET and <prefix>_<count_key>/_PROFILE/_SEED."""
    hw = load_hardware(os.environ.get("HW_PRESET", "atsnn28"))
    count = int(os.environ.get(f"{prefix}_{count_key}", str(count_default)))
    profile = os.environ.get(f"{prefix}_PROFILE", "random")
    rng = np.random.default_rng(int(os.environ.get(f"{prefix}_SEED", "1")))
    return hw, count, profile, rng


async def clock_and_reset(dut, idle: dict) -> None:
    """Start a 10 ns clock, hold reset over one rising edge with ``idle`` inputs, release at a falling edge."""
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    dut.rst.value = 1
    for name, value in idle.items():
        getattr(dut, name).value = value
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
