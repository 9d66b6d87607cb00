"""iLIF neurons (seed 003, SpikeConverter): what every stage needs to recognise and check them.

An iLIF layer amplifies its membrane by ``k = 2`` per step (a left shift by one bit) instead of
leaking, with an accumulate phase of T steps and a fire phase of T steps separated in time. The
whole network is compiled for one T (the fire phase emits the T-bit binary expansion of the
accumulated value, MSB first), recorded as ``Layer.extra["ilif"] = {"T": T, "k": 2}`` on every
layer of the program, the output integrator included (it doubles too). Semantics, cycles and
energy: docs/hardware.md sec. 10.

This module is deliberately tiny and dependency-free: the program validator, the compiler,
hwsim and the CLIs all ask it the same questions.
"""

from __future__ import annotations

from typing import Any

from atsnn.errors import ProgramFormatError, SimulationInputError

#: neuron kind of a hidden iLIF layer
KIND = "ilif"
#: the amplification factor; 2 is the only one a one-bit left shift gives and the one that makes the
#: fire phase a binary expansion (seed 003: k = 2 is the best factor at every timestep count)
GAIN = 2
#: key of the per-layer parameters in ``Layer.extra`` / ``FloatLayer.extra``
EXTRA_KEY = "ilif"


def layer_params(layer: Any) -> dict[str, Any] | None:
    """``{"T": ..., "k": 2, ...}`` of an iLIF layer or iLIF output integrator, else None."""
    extra = getattr(layer, "extra", None) or {}
    p = extra.get(EXTRA_KEY)
    return p if isinstance(p, dict) else None


def accumulate_steps(layer, T: int | None = None) -> int:
    """Accumulate steps A of a layer: T for a layer fed by spikes, 1 for one fed only by the direct input."""
    p = layer_params(layer) or {}
    return int(p.get("accumulate_steps", p.get("T", T)))


def network_T(layers) -> int | None:
    """The T an iLIF network (list of layers) is compiled for, or None for other networks."""
    for l in layers:
        p = layer_params(l)
        if p is not None or getattr(l, "neuron", None) == KIND:
            return int(p["T"]) if p is not None and "T" in p else None
    return None


def is_ilif(program_or_net) -> bool:
    return any(getattr(l, "neuron", None) == KIND or layer_params(l) is not None for l in program_or_net.layers)


def program_T(program) -> int | None:
    """T of an iLIF program (None for other programs)."""
    return network_T(program.layers) if is_ilif(program) else None


def first_ilif_layer(program) -> str:
    return next(l.name for l in program.layers if l.neuron == KIND or layer_params(l) is not None)


def early_exit_error(program, what: str) -> SimulationInputError:
    """The one-line error for any exit policy on an iLIF program."""
    return SimulationInputError(
        f"program '{program.name}' is an iLIF program (layer '{first_ilif_layer(program)}', T = "
        f"{program_T(program)}): its output exists only after all T accumulate and fire steps, so {what} is "
        "impossible; use --policy fixed")


def check_T(program, T: int) -> None:
    """An iLIF program runs only at the T it was compiled for."""
    t0 = program_T(program)
    if t0 is not None and int(T) != t0:
        raise SimulationInputError(f"program '{program.name}' is compiled for iLIF at T = {t0} (layer "
                                   f"'{first_ilif_layer(program)}'); run it with T = {t0}, not {T} "
                                   "(recompile with 'atsnn compile --T' for another T)")


def validate(program) -> None:
    """Structural rules of an iLIF program (called by :func:`atsnn.program.validate_program`)."""
    T = None
    hw = program.hardware
    for l in program.layers:
        where = f"layer '{l.name}'"
        p = layer_params(l)
        if l.neuron not in (KIND, "integrator"):
            raise ProgramFormatError(f"{where}: neuron '{l.neuron}' in an iLIF program; every spiking layer must "
                                     "be iLIF (the fire phase feeds binary-expansion spikes to the next layer)")
        if p is None:
            raise ProgramFormatError(f"{where}: iLIF program layer without extra['{EXTRA_KEY}'] parameters")
        if not isinstance(p.get("T"), int) or p["T"] < 1:
            raise ProgramFormatError(f"{where}: iLIF T must be an integer >= 1, not {p.get('T')!r}")
        if p.get("k", GAIN) != GAIN:
            raise ProgramFormatError(f"{where}: iLIF amplification k = {p.get('k')!r}; only k = {GAIN} (one-bit "
                                     "left shift) is supported")
        if T is None:
            T = p["T"]
        elif p["T"] != T:
            raise ProgramFormatError(f"{where}: iLIF T = {p['T']} differs from T = {T} of the other layers")
        A = p.get("accumulate_steps", p["T"])
        only_direct = all(s.source == "input" for s in l.synapses) and program.input.encoding == "direct"
        if A not in ((1, p["T"]) if only_direct else (p["T"],)):
            raise ProgramFormatError(f"{where}: iLIF accumulate_steps = {A!r}; must be T = {p['T']}"
                                     + (" or 1 (fed only by the direct input)" if only_direct else ""))
        if l.leak_shift != 0:
            raise ProgramFormatError(f"{where}: iLIF layers amplify instead of leaking; leak_shift must be 0")
        if l.neuron == KIND and l.reset != "subtract":
            raise ProgramFormatError(f"{where}: iLIF needs soft reset (reset = 'subtract'), not '{l.reset}'")
        if l.neuron == KIND and l.threshold > hw.membrane_max // 2:
            raise ProgramFormatError(f"{where}: iLIF threshold {l.threshold} exceeds membrane_max // 2 = "
                                     f"{hw.membrane_max // 2} (the fire phase doubles a value below the threshold)")
    if program.early_exit or program.at is not None:
        raise ProgramFormatError(f"program '{program.name}': iLIF programs have no early exit (layer "
                                 f"'{first_ilif_layer(program)}' fires only after all T steps); early_exit must be "
                                 "false and at null")
