"""Datasets the simulator CLI can load by name or from an NPZ file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atsnn.errors import SimulationInputError


def digits_test_split() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits (ships with the package), 30 % stratified test split, random_state 0.

    Values are normalised to [0, 1] (pixel / 16), images (n, 1, 8, 8).
    """
    try:
        from atsnn.workloads.digits import load_split
        _, _, x, y = load_split()
        x = np.asarray(x, dtype=np.float64)
        return x.reshape(x.shape[0], 1, 8, 8) / (16.0 if x.max() > 1.0 else 1.0), np.asarray(y)
    except ImportError:
        pass
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    _, xt, _, yt = train_test_split(d.data, d.target, test_size=0.3, stratify=d.target, random_state=0)
    return (xt / 16.0).reshape(-1, 1, 8, 8), yt


#: named data sets whose samples are sequences of frames (sequence programs, docs/hardware.md sec. 11)
SEQUENCE_DATA = ("digits-seq",)
#: named data sets whose samples are single images (direct programs)
IMAGE_DATA = ("digits", "synthetic")


def digits_sequence_split() -> tuple[np.ndarray, np.ndarray]:
    """The digits test split of :func:`digits_test_split` as sequences ``(n, 8, 8)``: frame t = image row t
    (8 pixels, pixel / 16), T = 8 (the sequential-digits task)."""
    x, y = digits_test_split()
    return x.reshape(x.shape[0], 8, 8), y


def _check_kind(spec: str, encoding: str, input_shape) -> None:
    """A named data set must match the program's input encoding (one line naming both)."""
    shape = ", ".join(map(str, input_shape))
    if encoding == "sequence" and spec in IMAGE_DATA:
        raise SimulationInputError(f"data '{spec}' holds single images, but the program takes sequence inputs "
                                   f"(samples, T, {shape}), one frame per timestep: use --data "
                                   f"{' or '.join(SEQUENCE_DATA)} or an .npz with x of that shape")
    if encoding != "sequence" and spec in SEQUENCE_DATA:
        raise SimulationInputError(f"data '{spec}' holds sequences of frames, but the program takes {encoding} "
                                   f"inputs of shape ({shape}): use --data digits or an .npz")


def synthetic_images(n: int, seed: int, shape=(3, 32, 32)) -> np.ndarray:
    """Smooth random images in [0, 1] (low-pass noise, 4x4 blocks), seeded; no labels."""
    rng = np.random.default_rng(seed + 12345)
    small = rng.uniform(0, 1, (n, shape[0], -(-shape[1] // 4), -(-shape[2] // 4)))
    big = small.repeat(4, axis=2).repeat(4, axis=3)[:, :, :shape[1], :shape[2]]
    return np.clip(big + rng.normal(0, 0.05, (n,) + tuple(shape)), 0, 1)


def load_data(spec: str, input_shape: tuple[int, ...], *, synthetic_samples: int = 8,
              seed: int = 0, encoding: str = "direct") -> tuple[np.ndarray, np.ndarray | None, str]:
    """``digits``, ``synthetic`` (seeded smooth images of the program's input shape, no labels),
    ``digits-seq`` (sequence programs) or an NPZ file with ``x`` (and optional ``y``); reshaped to the
    program's input: ``(n, *input_shape)``, or ``(n, T_in, *input_shape)`` for ``encoding = "sequence"``."""
    _check_kind(spec, encoding, input_shape)
    if spec == "digits-seq":
        x, y = digits_sequence_split()
        name = "digits-seq (digits test split, frame t = image row t, pixels/16)"
    elif spec == "digits":
        x, y = digits_test_split()
        name = "digits (scikit-learn, 30% test split, pixels/16)"
    elif spec == "synthetic":
        if len(input_shape) != 3:
            raise SimulationInputError(f"'synthetic' data makes images (C, H, W); the program expects {input_shape}")
        x, y = synthetic_images(synthetic_samples, seed, tuple(input_shape)), None
        name = f"synthetic (seeded smooth images, seed {seed})"
    else:
        p = Path(spec)
        if p.is_dir():
            raise SimulationInputError(f"data file '{spec}' is a directory, not an .npz file")
        if not p.is_file():
            raise SimulationInputError(f"data file '{spec}' does not exist (use 'digits', 'digits-seq' or an .npz with "
                                   "x and y)")
        try:
            with np.load(p, allow_pickle=False) as z:
                if "x" not in z.files:
                    raise SimulationInputError(f"data file '{spec}' has no array 'x' (found: {', '.join(z.files)})")
                x = z["x"]
                y = z["y"] if "y" in z.files else None
        except SimulationInputError:
            raise
        except ValueError as exc:
            if "pickle" in str(exc).lower() or "allow_pickle" in str(exc):
                raise SimulationInputError(f"data file '{spec}' is not an .npz of numeric arrays "
                                           "(x and y)") from None
            raise SimulationInputError(f"data file '{spec}' cannot be read: {exc}") from None
        except Exception as exc:
            raise SimulationInputError(f"data file '{spec}' cannot be read: {exc}") from None
        if x.ndim < 1 or x.shape[0] < 1:
            raise SimulationInputError(f"data file '{spec}': array 'x' has shape {x.shape}; it needs "
                                       "one entry per sample (samples, ...)")
        if x.dtype.kind not in "biuf":
            raise SimulationInputError(f"data file '{spec}': array 'x' has dtype {x.dtype}; it must "
                                       "be numeric")
        name = p.name
    n = x.shape[0]
    if encoding == "sequence":
        return _as_sequences(x, input_shape, spec), y, name
    if x.shape[1:] != tuple(input_shape):
        if int(np.prod(x.shape[1:])) == int(np.prod(input_shape)):
            x = x.reshape((n,) + tuple(input_shape))
        else:
            raise SimulationInputError(f"data has shape {x.shape[1:]} per sample; the program expects {input_shape}")
    return x, y, name


def _as_sequences(x: np.ndarray, input_shape, spec: str) -> np.ndarray:
    """``x`` as ``(n, T_in, *input_shape)`` (frames may be flattened), else a one-line error."""
    if x.ndim < 3 or int(np.prod(x.shape[2:])) != int(np.prod(input_shape)):
        raise SimulationInputError(f"data '{spec}' has shape {x.shape}; the program takes sequence inputs "
                                   f"(samples, T, {', '.join(map(str, input_shape))})")
    return x.reshape(x.shape[:2] + tuple(input_shape))
