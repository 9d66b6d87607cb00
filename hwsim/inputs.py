"""Input quantization and validation for the simulator."""

from __future__ import annotations

import numpy as np

from atsnn.errors import SimulationInputError
from atsnn.program import Program


def quantize_input(program: Program, x_real: np.ndarray) -> np.ndarray:
    """Real-valued direct-encoding inputs -> unsigned integers of ``input.bits``.

    ``x_int = clip(rint(x / input.scale), 0, 2**bits - 1)``. ``x_real`` has
    shape ``(samples, *input.shape)`` or ``(samples, prod(input.shape))``.
    """
    shape = tuple(program.input.shape)
    x = np.asarray(x_real)
    if x.dtype.kind not in "biuf":
        raise SimulationInputError(f"inputs must be numeric, not dtype {x.dtype}")
    if x.ndim >= 1 and x.shape[1:] != shape:
        if x.ndim >= 2 and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
            x = x.reshape((x.shape[0],) + shape)
        else:
            raise SimulationInputError(f"inputs have shape {x.shape[1:]} per sample; program "
                                       f"'{program.name}' expects {shape}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise SimulationInputError("inputs contain NaN or inf")
    if x.size and x.min() < 0:
        raise SimulationInputError(f"inputs must be non-negative (found {x.min():g}); the first layer takes "
                                   f"unsigned {program.input.bits}-bit values")
    hi = (1 << program.input.bits) - 1
    return np.clip(np.rint(x / program.input.scale), 0, hi).astype(np.int64)


def check_spike_input(program: Program, x: np.ndarray, T: int) -> np.ndarray:
    """Validate a spike-train input of shape ``(samples, T, *input.shape)`` with values in {0, 1}."""
    shape = tuple(program.input.shape)
    x = np.asarray(x)
    if x.ndim != len(shape) + 2 or x.shape[2:] != shape or x.shape[1] < T:
        raise SimulationInputError(f"spike inputs must have shape (samples, >= {T}, {', '.join(map(str, shape))}), "
                                   f"not {x.shape}")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise SimulationInputError("spike inputs must be 0 or 1")
    return x.astype(np.int64)
