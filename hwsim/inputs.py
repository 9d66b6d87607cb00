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
    return _to_int(program, x)


def _to_int(program: Program, x: np.ndarray) -> np.ndarray:
    """``clip(rint(x / input.scale), 0, 2**bits - 1)`` after checking the values are finite and non-negative."""
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise SimulationInputError("inputs contain NaN or inf")
    if x.size and x.min() < 0:
        raise SimulationInputError(f"inputs must be non-negative (found {x.min():g}); the first layer takes "
                                   f"unsigned {program.input.bits}-bit values")
    hi = (1 << program.input.bits) - 1
    q = np.rint(x / program.input.scale)
    if q.size and q.max() > hi:
        top = hi * program.input.scale
        raise SimulationInputError(
            f"inputs reach {x.max():g}, above the range [0, {top:g}] program '{program.name}' was "
            f"compiled for ({int((q > hi).sum())} values); rescale the data, recompile with "
            "--input-max, or pass --clip to clip them")
    return q.astype(np.int64)


def clip_to_program_range(program: Program, x: np.ndarray) -> tuple[np.ndarray, int]:
    """``x`` with values above the program's input range clipped to it, and how many were."""
    top = ((1 << program.input.bits) - 1) * program.input.scale
    x = np.asarray(x, dtype=np.float64)
    over = int(np.count_nonzero(np.rint(x / program.input.scale) > (1 << program.input.bits) - 1))
    return np.minimum(x, top), over


def sequence_shape_error(program: Program, T: int, got) -> SimulationInputError:
    """The one-line error for inputs that are not ``(samples, >= T, *input.shape)`` frames."""
    shape = tuple(program.input.shape)
    return SimulationInputError(f"program '{program.name}' takes sequence inputs of shape (samples, >= {T}, "
                                f"{', '.join(map(str, shape))}) (one frame per timestep), not {tuple(got)}")


def check_sequence_shape(program: Program, x: np.ndarray, T: int) -> np.ndarray:
    """``x`` as ``(samples, T_in, *input.shape)`` with ``T_in >= T`` (frames may come flattened), else the error."""
    shape = tuple(program.input.shape)
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise SimulationInputError(f"inputs must be numeric, not dtype {x.dtype}")
    if x.ndim < 3 or x.shape[1] < T or int(np.prod(x.shape[2:])) != int(np.prod(shape)):
        raise sequence_shape_error(program, T, x.shape)
    return x.reshape(x.shape[:2] + shape)


def quantize_sequence_input(program: Program, x_real: np.ndarray, T: int) -> np.ndarray:
    """Real frames ``(samples, >= T, *input.shape)`` of a sequence program -> unsigned ``input.bits`` integers
    (frame t feeds timestep t, docs/hardware.md sec. 11)."""
    return _to_int(program, check_sequence_shape(program, x_real, T))


def check_sequence_int(program: Program, x_int: np.ndarray, T: int) -> np.ndarray:
    """Already-quantized frames: shape as :func:`check_sequence_shape`, values in ``[0, 2**bits - 1]``."""
    x = check_sequence_shape(program, x_int, T).astype(np.int64)
    hi = (1 << program.input.bits) - 1
    if x.size and (x.min() < 0 or x.max() > hi):
        raise SimulationInputError(f"quantized inputs outside [0, {hi}]")
    return x


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


def prepare_inputs(program: Program, x: np.ndarray, labels, T: int, *, already_quantized: bool = False,
                   frames: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """The simulators' input stage: ``(x_int, labels)`` ready to run, or a :class:`SimulationInputError`.

    By ``program.input.encoding``: ``"spikes"`` -> :func:`check_spike_input`; ``"sequence"`` (only with
    ``frames``) -> :func:`check_sequence_int` if ``already_quantized`` else
    :func:`quantize_sequence_input`; otherwise (direct) -> the integers as given, checked for shape
    ``(samples, *input.shape)`` and range ``[0, 2**bits - 1]``, if ``already_quantized``, else
    :func:`quantize_input`. ``frames=False`` is for a simulator without frame inputs: a sequence
    program's inputs are then taken like direct ones. There must be at least one sample; ``labels``
    (optional) become an ``int64`` vector, one per sample.
    """
    if program.input.encoding == "spikes":
        xq = check_spike_input(program, x, T)
    elif frames and program.input.encoding == "sequence":
        xq = check_sequence_int(program, x, T) if already_quantized else quantize_sequence_input(program, x, T)
    elif already_quantized:
        xq = np.asarray(x, dtype=np.int64)
        if xq.shape[1:] != tuple(program.input.shape):
            raise SimulationInputError(f"inputs have shape {xq.shape[1:]}, expected {tuple(program.input.shape)}")
        if xq.size and (xq.min() < 0 or xq.max() > (1 << program.input.bits) - 1):
            raise SimulationInputError(f"quantized inputs outside [0, {(1 << program.input.bits) - 1}]")
    else:
        xq = quantize_input(program, x)
    n = xq.shape[0]
    if n < 1:
        raise SimulationInputError("no input samples")
    if labels is not None:
        labels = check_labels(labels, n, program.classes)
    return xq, labels


def check_labels(labels, n: int, classes: int) -> np.ndarray:
    """``labels`` as an ``int64`` vector of ``n`` class indices in ``[0, classes)``, or a one-line error.

    Labels must be of an integer dtype (a float array is refused even when its values are
    integral: a fractional, NaN or huge label is never rounded into a class)."""
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise SimulationInputError(f"labels 'y' have dtype {y.dtype}; they must be integers in "
                                   f"[0, {classes - 1}]")
    y = y.ravel()
    if y.shape[0] != n:
        raise SimulationInputError(f"{y.shape[0]} labels for {n} samples; give one label per sample")
    if y.size and (y.min() < 0 or y.max() >= classes):
        bad = y[(y < 0) | (y >= classes)][0]
        raise SimulationInputError(f"label {int(bad)} is outside the program's classes [0, "
                                   f"{classes - 1}]")
    return y.astype(np.int64)
