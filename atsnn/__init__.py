"""atsnn: adaptive-timestep SNN accelerator kit.

Shared core used by ``compiler``, ``hwsim`` and ``rtl``: the one hardware
description (:mod:`atsnn.config`), the per-action cost tables
(:mod:`atsnn.costs`), the compiled-program format (:mod:`atsnn.program`) and
the user-facing errors (:mod:`atsnn.errors`). The numeric contract that
hwsim and rtl both implement is ``docs/hardware.md``.
"""

__version__ = "0.1.0"
