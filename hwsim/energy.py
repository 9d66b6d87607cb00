"""Per-action energies derived from a cost table and the hardware description (contract sec. 8).

:class:`ActionEnergy` turns counted actions of one layer-timestep into energy
per component (pJ): ``pe_logic``, ``pe_memory``, ``spike_buffers``,
``at_unit``, ``glb``, ``dram``; leakage is charged from time by
:meth:`ActionEnergy.leakage_pj`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from atsnn.config import HardwareConfig
from atsnn.costs import CostTable

COMPONENTS = ("pe_logic", "pe_memory", "spike_buffers", "at_unit", "glb", "dram", "leakage")


@dataclass
class ActionEnergy:
    hw: HardwareConfig
    costs: CostTable
    psn: bool = False  # the program has a sliding-PSN layer: every PE leaks one tap multiplier (sec. 11)

    def __post_init__(self):
        hw, c = self.hw, self.costs
        n = hw.numeric
        self.wbytes = n.weight_bits / 8
        self.accbytes = math.ceil(n.accumulator_bits / 8)
        self.membytes = math.ceil(n.membrane_bits / 8)
        self.at_membytes = math.ceil(hw.at.membrane_bits / 8)
        self.ev_bytes = n.event_bytes
        self.sb_rd = c.memory_pj_per_byte("spike_buffer", "read")
        self.sb_wr = c.memory_pj_per_byte("spike_buffer", "write")
        self.pm_rd = c.memory_pj_per_byte("pe_data_memory", "read")
        self.pm_wr = c.memory_pj_per_byte("pe_data_memory", "write")
        self.am_rd = c.memory_pj_per_byte("at_data_memory", "read")
        self.am_wr = c.memory_pj_per_byte("at_data_memory", "write")
        self.glb_rd = c.memory_pj_per_byte("glb", "read")
        self.glb_wr = c.memory_pj_per_byte("glb", "write")
        self.dram = c.dram_pj_per_byte
        self.add_acc = c.logic_pj("add", n.accumulator_bits)
        self.add_mem = c.logic_pj("add", n.membrane_bits)
        self.cmp_mem = c.logic_pj("compare", n.membrane_bits)
        self.shift_acc = c.logic_pj("shift", n.accumulator_bits)  # the current shift (sec. 2, 4)
        self.add_at = c.logic_pj("add", hw.at.membrane_bits)
        self.cmp_at = c.logic_pj("compare", hw.at.membrane_bits)
        # AT exit test (contract sec. 8)
        mul_w = max(hw.at.membrane_bits, hw.at.exp_table_value_bits)
        self.at_exit_per_class = (2 * c.logic_pj("mul", mul_w)
                                  + 2 * c.memory_access_pj("at_data_memory", "read")
                                  + 2 * c.logic_pj("add", hw.at.exp_table_value_bits) + c.logic_pj("add", 32))
        self.at_exit_per_step = 2 * c.logic_pj("mul", max(hw.at.cl_frac_bits, 32)) + c.logic_pj("compare", 32)
        self.dtsnn_per_class = (2 * c.memory_access_pj("dtsnn_lut", "read") + 2 * c.logic_pj("mul", 16)
                                + 2 * c.logic_pj("add", 32))
        self.dtsnn_per_step = c.logic_pj("compare", 32)

    # ------------------------------------------------------------------ leakage
    def leakage_mw(self, policy: str = "fixed") -> float:
        hw, c = self.hw, self.costs
        pe = (c.leakage_mw("pe_data_memory") + 2 * c.leakage_mw("spike_buffer") + 2 * c.leakage_mw("adder16")
              + 3 * c.leakage_mw("comparator16") + 2 * c.leakage_mw("register16"))
        at = (c.leakage_mw("at_data_memory") + 2 * c.leakage_mw("spike_buffer") + 2 * c.leakage_mw("multiplier16")
              + 2 * c.leakage_mw("adder16") + c.leakage_mw("comparator16") + 2 * c.leakage_mw("register16"))
        if self.psn:
            pe += c.leakage_mw("multiplier16")
        glb = hw.memory.glb_banks * c.leakage_mw("glb_bank")
        total = hw.pe_count * pe + hw.array.at_units * at + glb
        if policy == "dtsnn":
            total += c.leakage_mw("dtsnn_lut")
        return total

    def leakage_pj(self, cycles, policy: str = "fixed"):
        return self.leakage_mw(policy) * 1e-3 * (np.asarray(cycles, dtype=np.float64) / self.hw.system.clock_hz) * 1e12

    # ------------------------------------------------------------------ sliding PSN (sec. 11)
    def psn_h_bits(self, k: int) -> int:
        """Width of the exact FIR sum ``H``: ``membrane_bits + psn_tap_bits + ceil(log2 k)``."""
        n = self.hw.numeric
        return n.membrane_bits + n.psn_tap_bits + math.ceil(math.log2(k)) if k > 1 else n.membrane_bits + n.psn_tap_bits

    def psn_update_pj(self, k: int) -> tuple[float, float]:
        """``(logic, memory)`` pJ of one PSN neuron update with ``k`` taps (contract sec. 11).

        Memory: accumulator read and written, ``k - 1`` history reads and ``k - 1`` history writes of
        ``membrane_bits`` (the history is shifted in place, as ``rtl/pe_psn.py`` does). Logic: the ``a + b`` add, two saturation compares, ``k`` multiplies at the smallest
        tabulated width covering ``membrane_bits x psn_tap_bits``, ``k - 1`` adds and one compare at the
        width of ``H``. No reset.
        """
        n, c = self.hw.numeric, self.costs
        hb = self.psn_h_bits(k)
        mem = self.accbytes * (self.pm_rd + self.pm_wr) + self.membytes * (k - 1) * (self.pm_rd + self.pm_wr)
        logic = (self.add_acc + 2 * self.cmp_mem + k * c.logic_pj("mul", max(n.membrane_bits, n.psn_tap_bits))
                 + (k - 1) * c.logic_pj("add", hb) + c.logic_pj("compare", hb))
        return logic, mem

    # ------------------------------------------------------------------ one layer-timestep
    def layer_energy(self, *, unit: str, leak: bool, subtract: bool, neurons: int, deliveries, synops, spikes,
                     glb_read_bytes, glb_write_bytes, dram_bytes, weights_streamed: bool,
                     psn_k: int = 0, current_shift: int = 0) -> dict[str, np.ndarray]:
        """Energy (pJ) per component for arrays of per-sample counts (contract sec. 8; ``psn_k > 0``: a
        sliding-PSN layer with that many taps, whose neuron updates are charged as in sec. 11)."""
        deliveries = np.asarray(deliveries, dtype=np.float64)
        synops = np.asarray(synops, dtype=np.float64)
        spikes = np.asarray(spikes, dtype=np.float64)
        zero = np.zeros_like(synops)
        buf = deliveries * self.ev_bytes * (self.sb_wr + self.sb_rd) + (neurons / 8.0) * (self.sb_wr + self.sb_rd)
        if unit == "at":
            mem = (synops * ((0 if weights_streamed else self.wbytes) * self.am_rd
                             + self.accbytes * (self.am_rd + self.am_wr))
                   + neurons * (self.at_membytes + self.accbytes) * (self.am_rd + self.am_wr))
            logic = synops * self.add_acc + neurons * (2 * self.add_at + 2 * self.cmp_at + (self.add_at if leak else 0))
            at_total = buf + mem + logic
            out = dict(pe_logic=zero, pe_memory=zero, spike_buffers=zero, at_unit=at_total)
        elif psn_k > 0:
            upd_logic, upd_mem = self.psn_update_pj(psn_k)
            mem = (synops * ((0 if weights_streamed else self.wbytes) * self.pm_rd
                             + self.accbytes * (self.pm_rd + self.pm_wr)) + neurons * upd_mem)
            logic = synops * self.add_acc + neurons * upd_logic
            out = dict(pe_logic=logic, pe_memory=mem, spike_buffers=buf, at_unit=zero)
        else:
            mem = (synops * ((0 if weights_streamed else self.wbytes) * self.pm_rd
                             + self.accbytes * (self.pm_rd + self.pm_wr))
                   + neurons * (self.membytes + self.accbytes) * (self.pm_rd + self.pm_wr))
            logic = (synops * self.add_acc
                     + neurons * (2 * self.add_acc + 3 * self.cmp_mem + (self.add_mem if leak else 0)
                                  + (self.shift_acc if current_shift else 0))
                     + (spikes * self.add_mem if subtract else 0))
            out = dict(pe_logic=logic, pe_memory=mem, spike_buffers=buf, at_unit=zero)
        out["glb"] = np.asarray(glb_read_bytes, dtype=np.float64) * self.glb_rd + np.asarray(
            glb_write_bytes, dtype=np.float64) * self.glb_wr
        out["dram"] = np.asarray(dram_bytes, dtype=np.float64) * self.dram
        return out
