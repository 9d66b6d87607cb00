"""Exit policies evaluated on a fixed-T :class:`atsnn.hwsim.engine.Trace` (seed 001).

- ``fixed``: run all T timesteps.
- ``dtsnn``: exit at the first t < T where the normalised entropy of
  ``softmax(u_real / t)`` is below ``theta`` (eq. 5-7), float64; its
  hardware is charged as a 6 KB lookup-table unit (contract sec. 8).
- ``atsn``: the AT unit's integer exit test (contract sec. 5, eq. 17-18) with
  ``cl_init`` and ``tau_cl``.

Cycles and energy are charged only up to each sample's exit timestep, plus
the policy unit's own cycles (``at_exp * C + at_decision`` per timestep) and
energy, leakage for the whole time, and the input load. Sweeps reuse the
trace: the membranes up to T do not depend on the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from atsnn.errors import SimulationInputError
from atsnn.hwsim.energy import COMPONENTS
from atsnn.hwsim.reference import at_exit, at_sigma, cl_sequence, exp_table

POLICIES = ("fixed", "dtsnn", "atsn")


@dataclass
class PolicyResult:
    policy: str
    params: dict[str, Any]
    exit_t: np.ndarray  # (S,) 1-based
    predicted: np.ndarray  # (S,)
    cycles: np.ndarray  # (S,)
    energy_pj: np.ndarray  # (S,)
    energy_by_component: dict[str, np.ndarray]  # component -> (S,)
    energy_by_layer: dict[str, dict[str, float]]  # layer -> component -> mean pJ per inference
    accuracy: float | None
    at_energy_pj: float  # mean AT unit energy per inference
    pe_energy_pj: float  # mean PE (logic + memory + buffers) energy per inference
    notes: list[str] = field(default_factory=list)

    @property
    def avg_timestep(self) -> float:
        return float(self.exit_t.mean())


def check_params(policy: str, theta: float | None, cl_init: float | None, tau_cl: float | None):
    if policy not in POLICIES:
        raise SimulationInputError(f"unknown policy '{policy}' (choose {', '.join(POLICIES)})")
    if policy == "dtsnn" and not (theta is not None and 0.0 < theta <= 1.0):
        raise SimulationInputError(f"--theta must be in (0, 1] for dtsnn, not {theta!r}")
    if policy == "atsn":
        for name, val in (("cl-init", cl_init), ("tau-cl", tau_cl)):
            if val is None or not (0.0 < val <= 1.0):
                raise SimulationInputError(f"--{name} must be in (0, 1] for atsn, not {val!r}")


def dtsnn_exit(trace, theta: float) -> np.ndarray:
    """Exit timestep per sample for DTSNN (eq. 5-7)."""
    prog = trace.program
    out = prog.output_layer
    logit_scale = prog.at.logit_scale if prog.at is not None else 1.0
    S, T, C = trace.u.shape
    t = np.arange(1, T + 1, dtype=np.float64)[None, :, None]
    z = trace.u.astype(np.float64) * out.scale * logit_scale / t
    z = z - z.max(axis=2, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=2, keepdims=True)
    ent = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=2) / np.log(C)
    ok = ent < theta
    ok[:, T - 1] = True
    return ok.argmax(axis=1) + 1


def atsn_exit(trace, cl_init: float, tau_cl: float) -> np.ndarray:
    """Exit timestep per sample of the AT unit's integer test."""
    prog = trace.program
    hw = prog.hardware
    if prog.at is None:
        raise SimulationInputError(f"program '{prog.name}' has no AT unit for its output layer (early_exit = false); "
                                   "use --policy fixed")
    table = exp_table(hw)
    sig, _ = at_sigma(trace.u, table, exp_mult=prog.at.exp_mult, d_clip=prog.at.d_clip, hw=hw)
    ssum = sig.sum(axis=2)
    cl = cl_sequence(cl_init, tau_cl, trace.T, hw)
    ok = at_exit(ssum, cl[None, :], hw)
    ok[:, trace.T - 1] = True
    return ok.argmax(axis=1) + 1


def evaluate(trace, policy: str = "fixed", *, theta: float | None = None, cl_init: float | None = None,
             tau_cl: float | None = None, exit_t: np.ndarray | None = None) -> PolicyResult:
    """Cost and accuracy of a policy on the trace."""
    check_params(policy, theta, cl_init, tau_cl)
    prog = trace.program
    hw = prog.hardware
    if policy != "fixed" and exit_t is None:
        from atsnn.ilif import early_exit_error, is_ilif
        if is_ilif(prog):  # the output of an iLIF program exists only after all T steps
            raise early_exit_error(prog, f"the {policy} exit policy")
    S, T, C = trace.u.shape
    if exit_t is None:
        if policy == "fixed":
            exit_t = np.full(S, T, dtype=np.int64)
        elif policy == "dtsnn":
            exit_t = dtsnn_exit(trace, theta)
        else:
            exit_t = atsn_exit(trace, cl_init, tau_cl)
    mask = (np.arange(1, T + 1)[None, :] <= exit_t[:, None]).astype(np.float64)
    idx = exit_t - 1
    u_exit = trace.u[np.arange(S), idx]
    predicted = u_exit.argmax(axis=1)
    act = trace.action
    unit_cycles = 0
    unit_energy = 0.0
    if policy in ("atsn", "dtsnn"):
        unit_cycles = hw.cycles.at_exp * C + hw.cycles.at_decision
        unit_energy = (act.at_exit_per_class * C + act.at_exit_per_step if policy == "atsn"
                       else act.dtsnn_per_class * C + act.dtsnn_per_step)
    step_cycles = trace.step_cycles() + unit_cycles
    cycles = (step_cycles * mask).sum(axis=1) + trace.input_load_cycles
    comp = {}
    by_layer: dict[str, dict[str, float]] = {}
    for name, d in trace.layers.items():
        by_layer[name] = {}
        for c in COMPONENTS:
            if c == "leakage":
                continue
            e = (d[f"energy_{c}"] * mask).sum(axis=1)
            comp[c] = comp.get(c, 0) + e
            by_layer[name][c] = float(e.mean())
    comp["at_unit"] = comp["at_unit"] + unit_energy * exit_t
    comp["dram"] = comp["dram"] + trace.input_load_energy_pj
    comp["leakage"] = act.leakage_pj(cycles, policy)
    by_layer["(system)"] = {c: 0.0 for c in COMPONENTS}
    by_layer["(system)"]["leakage"] = float(comp["leakage"].mean())
    by_layer["(system)"]["dram"] = float(trace.input_load_energy_pj)
    by_layer["(system)"]["at_unit"] = float((unit_energy * exit_t).mean())
    energy = sum(comp.values())
    acc = None
    if trace.labels is not None:
        acc = float((predicted == trace.labels).mean())
    pe_e = float((comp["pe_logic"] + comp["pe_memory"] + comp["spike_buffers"]).mean())
    params = {"theta": theta} if policy == "dtsnn" else ({"cl_init": cl_init, "tau_cl": tau_cl}
                                                         if policy == "atsn" else {"T": T})
    return PolicyResult(policy=policy, params=params, exit_t=exit_t, predicted=predicted, cycles=cycles,
                        energy_pj=energy, energy_by_component=comp, energy_by_layer=by_layer, accuracy=acc,
                        at_energy_pj=float(comp["at_unit"].mean()), pe_energy_pj=pe_e)


def sweep_dtsnn(trace, thetas) -> list[PolicyResult]:
    return [evaluate(trace, "dtsnn", theta=float(th)) for th in thetas]


def sweep_atsn(trace, cl_inits, tau_cls) -> list[PolicyResult]:
    return [evaluate(trace, "atsn", cl_init=float(a), tau_cl=float(b)) for a in cl_inits for b in tau_cls]
