"""The sweep specification: a TOML file checked against a strict pydantic schema.

A spec names the models and the axes of a design-space sweep (README "Design-space
exploration")::

    name = "digits_vgg16"

    [[models]]
    name = "digits_cnn"          # label in the table (default: the source's stem)
    source = "digits_cnn_clip"   # shipped model name, topology name or NIR file (relative to spec)
    mode = "exact"               # exact (cycle simulation) | analytic (firing rates)
    data = "digits"              # digits | digits-seq | synthetic | FILE.npz (relative to spec)
    samples = 100                # first N samples (default: all; analytic: 2)

    [hardware]
    base = "atsnn28"             # preset or hardware TOML (relative to spec)
    [[hardware.variants]]        # explicit variants; each a set of key-path overrides
    label = "8x8"
    set = { "array.rows" = 8, "array.cols" = 8 }
    [hardware.grid]              # every key a list of values; crossed with the variants
    "pe.data_memory_bytes" = [1024, 2048]

    [axes]
    T = [4, 8]
    costs = ["sata28-500mhz"]    # cost presets or TOML files (relative to spec)
    dram = ["lpddr4", "ddr3"]    # DRAM models of the cost tables (default: each table's)
    [[axes.policies]]
    policy = "atsn"
    cl_init = [0.999]
    tau_cl = [0.995, 0.999]

:func:`load_spec` raises :class:`SpecError` with one line naming the spec file and the key
path (``models[1].mode``) for every malformed entry. Checks that need the file system or
the hardware schema (files exist, overrides are valid hardware) are done by
:mod:`atsnn.sweep.plan`, with the same kind of message.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError

from atsnn.cli_types import MAX_TIMESTEPS
from atsnn.errors import AtsnnError
from atsnn.schema import StrictModel, key_path, one_line

Name = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]
Timesteps = Annotated[int, Field(ge=1, le=MAX_TIMESTEPS)]
UnitOpenClosed = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]

#: parameters each exit policy takes, with the defaults of ``atsnn simulate``
POLICY_PARAMS: dict[str, dict[str, float]] = {
    "fixed": {},
    "dtsnn": {"theta": 0.3},
    "atsn": {"cl_init": 0.999, "tau_cl": 0.999},
}

#: samples the analytic mode measures firing rates on when ``samples`` is not given
ANALYTIC_DEFAULT_SAMPLES = 2


class SpecError(AtsnnError, ValueError):
    """A sweep spec is malformed; the message names the spec file and the key path."""


class ModelSpec(StrictModel):
    """One model of the sweep and how it is run."""

    source: Name = Field(description="shipped model name, topology name or NIR file")
    name: Name | None = Field(None, description="label of the model in the table")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="weight seed of a topology source")
    mode: Literal["exact", "analytic"] = "exact"
    data: Name = Field("digits", description="digits, digits-seq, synthetic or an .npz file")
    samples: int | None = Field(None, ge=1, description="use the first N samples")
    T: list[Timesteps] | None = Field(None, min_length=1,
                                      description="timesteps (overrides axes.T)")
    input_max: float | None = Field(None, gt=0.0, allow_inf_nan=False,
                                    description="largest input value the program is compiled for")
    measure_T: Timesteps = Field(8, description="analytic: timesteps of the rate-measuring run")
    rate: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False,
                               description="analytic: one firing rate for every spiking layer")


class VariantSpec(StrictModel):
    """One explicit hardware variant: overrides of the base by key path."""

    label: Name | None = None
    set: dict[str, Any] = Field(default_factory=dict,
                                description="key path -> value, e.g. \"array.rows\" = 8")


class HardwareSpec(StrictModel):
    """The hardware axis: a base description, explicit variants and a grid of key values."""

    base: Name = Field("atsnn28", description="hardware preset or TOML file")
    variants: list[VariantSpec] = Field(default_factory=lambda: [VariantSpec()], min_length=1)
    grid: dict[str, Any] = Field(default_factory=dict,
                                 description="key path -> list of values (Cartesian product)")


class PolicySpec(StrictModel):
    """One exit policy and the values of its parameters (every combination is a point)."""

    policy: Literal["fixed", "dtsnn", "atsn"]
    theta: list[UnitOpenClosed] | None = Field(None, min_length=1,
                                               description="DTSNN entropy thresholds in (0, 1]")
    cl_init: list[UnitOpenClosed] | None = Field(None, min_length=1,
                                                 description="ATSN CL_init values in (0, 1]")
    tau_cl: list[UnitOpenClosed] | None = Field(None, min_length=1,
                                                description="ATSN tau_CL values in (0, 1]")

    def combinations(self) -> list[dict[str, float]]:
        """Every parameter combination of this entry, in spec order (defaults fill gaps)."""
        import itertools
        names = list(POLICY_PARAMS[self.policy])
        values = [getattr(self, n) or [POLICY_PARAMS[self.policy][n]] for n in names]
        return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def _fixed_only() -> list[PolicySpec]:
    return [PolicySpec(policy="fixed")]


class AxesSpec(StrictModel):
    """The axes every model is crossed with."""

    T: list[Timesteps] = Field(default_factory=lambda: [8], min_length=1)
    costs: list[Name] = Field(default_factory=lambda: ["sata28-500mhz"], min_length=1)
    dram: list[Name] | None = Field(None, min_length=1,
                                    description="DRAM models (default: each cost table's)")
    policies: list[PolicySpec] = Field(default_factory=_fixed_only, min_length=1)


class SweepSpec(StrictModel):
    """The whole spec document."""

    name: Name = Field(description="name of the sweep, shown in the report")
    description: str = ""
    models: list[ModelSpec] = Field(min_length=1, description="[[models]] entries")
    hardware: HardwareSpec = Field(default_factory=HardwareSpec)
    axes: AxesSpec = Field(default_factory=AxesSpec)


def _message(exc: ValidationError) -> str:
    """One sentence for the first validation error: key path, bad value and the rule."""
    err = exc.errors()[0]
    path = key_path(tuple(err["loc"])) or "document"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    kind, ctx = err["type"], err.get("ctx") or {}
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()), None)
        return f"key '{path}' = {shown} must be {bounds[kind]} {limit}"
    if kind == "list_type":
        return f"key '{path}' must be an array (e.g. [4, 8]), not {shown}"
    if kind == "too_short":
        return f"key '{path}' must not be empty"
    if kind == "literal_error":
        return f"key '{path}' = {shown} must be one of {ctx.get('expected', '')}"
    return one_line(exc, SweepSpec)[1]


def _check_cross(spec: SweepSpec) -> list[tuple[str, str]]:
    """(key path, message) of the rules that involve more than one key."""
    problems: list[tuple[str, str]] = []
    for i, pol in enumerate(spec.axes.policies):
        for param in ("theta", "cl_init", "tau_cl"):
            if getattr(pol, param) is not None and param not in POLICY_PARAMS[pol.policy]:
                problems.append((f"axes.policies[{i}].{param}",
                                 f"does not apply to policy '{pol.policy}' (it takes "
                                 f"{', '.join(POLICY_PARAMS[pol.policy]) or 'no parameters'})"))
    for name in ("T", "costs", "dram"):
        vals = getattr(spec.axes, name) or []
        dup = next((v for j, v in enumerate(vals) if v in vals[:j]), None)
        if dup is not None:
            problems.append((f"axes.{name}", f"lists {dup!r} twice"))
    for i, m in enumerate(spec.models):
        if m.mode == "exact":
            for param in ("rate", "measure_T"):
                if param in m.model_fields_set:
                    problems.append((f"models[{i}].{param}",
                                     "applies to mode = \"analytic\" only"))
        if m.mode == "analytic" and m.rate is not None and "data" in m.model_fields_set:
            problems.append((f"models[{i}].rate", "give either rate or data, not both"))
        if m.T and len(set(m.T)) != len(m.T):
            problems.append((f"models[{i}].T", "lists a value twice"))
    labels = [m.name or model_stem(m.source) for m in spec.models]
    for i, lab in enumerate(labels):
        if lab in labels[:i]:
            problems.append((f"models[{i}].name", f"model label '{lab}' is used twice; "
                                                  "give each model a distinct name"))
    vlabels = [v.label for v in spec.hardware.variants if v.label is not None]
    for i, lab in enumerate(vlabels):
        if lab in vlabels[:i]:
            problems.append(("hardware.variants", f"variant label '{lab}' is used twice"))
    return problems


def model_stem(source: str) -> str:
    """Default label of a model: the file stem of its source (``a/b/net.nir`` -> ``net``)."""
    return Path(source).stem or source


def parse_spec(data: Any, *, source: str) -> SweepSpec:
    """Validate a parsed spec document; :class:`SpecError` ``"SOURCE: key 'PATH' ..."`` if not."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a sweep spec must be a TOML table")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{source}: {_message(exc)}") from None
    problems = _check_cross(spec)
    if problems:
        path, msg = problems[0]
        raise SpecError(f"{source}: key '{path}' {msg}")
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate the spec file at ``path`` (TOML); :class:`SpecError` on any problem."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"sweep spec '{path}' does not exist" if not p.exists()
                        else f"sweep spec '{path}' is not a file")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML: {' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise SpecError(f"sweep spec '{path}' cannot be read: {exc.strerror or exc}") from None
    return parse_spec(data, source=str(path))
