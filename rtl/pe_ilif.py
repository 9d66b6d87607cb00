"""The PE with the iLIF mode of docs/hardware.md sec. 10 (module ``atsnn_pe_ilif``).

The datapath is :class:`atsnn.rtl.pe.ProcessingElement` built with ``ilif=True`` (see its docstring for
the two extra inputs ``ilif`` and ``fire_phase``); this module names it and exports it. Golden
model: :func:`atsnn.hwsim.ilif_reference.ilif_accumulate` / ``ilif_fire`` and, for ``ilif = 0``,
:func:`atsnn.hwsim.reference.neuron_update`.
"""

from __future__ import annotations

from atsnn.config import HardwareConfig
from atsnn.rtl.pe import ProcessingElement

#: deliberate faults the iLIF mutation test builds
MUTANTS = (None, "carry", "compare")


class IlifProcessingElement(ProcessingElement):
    def __init__(self, hw: HardwareConfig, *, mutant: str | None = None):
        if mutant not in MUTANTS:
            raise ValueError(f"mutant must be one of {MUTANTS}, not {mutant!r}")
        super().__init__(hw, ilif=True, mutant=mutant)


def export_ilif_pe(hw: HardwareConfig, out_dir, *, lint: bool = True):
    """Write ``atsnn_pe_ilif.v`` into ``out_dir`` (and lint it with Verilator); returns the path."""
    from pathlib import Path

    from atsnn.rtl.export import lint as verilator_lint
    from atsnn.rtl.export import verilog_text, write_if_changed
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "atsnn_pe_ilif.v"
    write_if_changed(path, verilog_text(IlifProcessingElement(hw), "atsnn_pe_ilif"))
    if lint:
        verilator_lint(path)
    return path
