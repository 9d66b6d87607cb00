"""CIFAR-scale and detection topologies with seeded synthetic weights (no data can be downloaded here).

``build(name, seed=0)`` returns a :class:`FloatNetwork` converted from an ANN
with He-initialised weights; thresholds are the 99.9th percentile of the ANN
activations on seeded synthetic images, so firing rates land in a realistic
range. ``decisions['synthetic_weights']`` is True and every report using
these says so. A user with trained weights passes them through the same
converter (compiler.convert).

- ``vgg16``: CIFAR-10 VGG16 (13 conv 3x3 + FC 512-512-10), 2x2 average pooling.
- ``resnet19`` / ``resnet20``: residual networks are not in the converter yet;
  requesting them raises ConversionError saying so.
"""

from __future__ import annotations

import numpy as np

from atsnn.errors import ConversionError
from compiler.convert import AvgPool, Conv, Dense, Flatten, ReLU, convert
from compiler.ir import FloatNetwork

VGG16_CFG = [64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P"]
CALIB_IMAGES = 8


def _he(rng, shape, fan_in):
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)


def vgg16_ann(seed: int = 0, classes: int = 10) -> list:
    rng = np.random.default_rng(seed)
    ann, c = [], 3
    for v in VGG16_CFG:
        if v == "P":
            ann.append(AvgPool(2))
            continue
        ann += [Conv(_he(rng, (v, c, 3, 3), c * 9), rng.normal(0, 0.01, v), padding=1), ReLU()]
        c = v
    ann += [Flatten(), Dense(_he(rng, (512, 512), 512), rng.normal(0, 0.01, 512)), ReLU(),
            Dense(_he(rng, (classes, 512), 512), np.zeros(classes))]
    return ann


def synthetic_images(n: int, seed: int, shape=(3, 32, 32)) -> np.ndarray:
    """Smooth random images in [0, 1] (low-pass noise), seeded."""
    rng = np.random.default_rng(seed + 12345)
    small = rng.uniform(0, 1, (n, shape[0], shape[1] // 4, shape[2] // 4))
    return np.clip(small.repeat(4, axis=2).repeat(4, axis=3) + rng.normal(0, 0.05, (n,) + shape), 0, 1)


def build(name: str, seed: int = 0) -> FloatNetwork:
    if name == "vgg16":
        net = convert(vgg16_ann(seed), (3, 32, 32), synthetic_images(CALIB_IMAGES, seed), threshold="p99.9",
                      v_init="half", name="vgg16_cifar10_synthetic")
    elif name in ("resnet19", "resnet20", "yolov3-tiny"):
        raise ConversionError(f"topology '{name}' needs residual blocks / transposed convolutions in the converter, "
                              "which are not implemented yet")
    else:
        raise ConversionError(f"unknown topology '{name}' (available: vgg16)")
    net.decisions["synthetic_weights"] = True
    net.decisions["input_max"] = 1.0
    return net
