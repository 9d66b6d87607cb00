"""CIFAR-scale and detection topologies with seeded synthetic weights (no data can be downloaded here).

``build(name, seed=0)`` returns a :class:`FloatNetwork` converted from an ANN
with He-initialised weights; thresholds are the 99.9th percentile of the ANN
activations on seeded synthetic images, so firing rates land in a realistic
range. ``decisions['synthetic_weights']`` is True and every report using
these says so. A user with trained weights passes them through the same
converter (compiler.convert).

- ``vgg16``: CIFAR-10 VGG16 (13 conv 3x3 + FC 512-512-10), 2x2 average pooling.
- ``resnet20``: CIFAR ResNet-20 (16-32-64 channels, 3 basic blocks per stage, 1x1
  projection shortcuts at the strided stage entries, global average pool, FC 10).
- ``resnet19``: the ResNet-19 of the tdBN / ATSN papers (128-256-512 channels, 3-3-2 basic
  blocks, global average pool, FC 256-10).
- ``yolov3-tiny`` (seed 004) needs transposed convolutions and multi-branch heads in the
  converter; requesting it raises ConversionError saying so.
"""

from __future__ import annotations

import numpy as np

from atsnn.errors import ConversionError
from compiler.convert import AvgPool, BatchNorm, Conv, Dense, Flatten, ReLU, Residual, convert
from compiler.ir import FloatNetwork

TOPOLOGIES = ("vgg16", "resnet19", "resnet20")
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


def _bn(rng, c):
    return BatchNorm(gamma=rng.uniform(0.8, 1.2, c), beta=rng.normal(0, 0.05, c), mean=np.zeros(c), var=np.ones(c))


def _basic_block(rng, cin: int, cout: int, stride: int) -> Residual:
    body = [Conv(_he(rng, (cout, cin, 3, 3), cin * 9), None, stride=stride, padding=1), _bn(rng, cout), ReLU(),
            Conv(_he(rng, (cout, cout, 3, 3), cout * 9) * 0.5, None, padding=1), _bn(rng, cout)]
    short = [] if (stride == 1 and cin == cout) else [Conv(_he(rng, (cout, cin, 1, 1), cin), None, stride=stride),
                                                      _bn(rng, cout)]
    return Residual(body, short)


def resnet_ann(widths: list[int], blocks: list[int], head: list[int], seed: int = 0, classes: int = 10) -> list:
    rng = np.random.default_rng(seed)
    ann = [Conv(_he(rng, (widths[0], 3, 3, 3), 27), None, padding=1), _bn(rng, widths[0]), ReLU()]
    cin = widths[0]
    for stage, (w, n) in enumerate(zip(widths, blocks)):
        for k in range(n):
            stride = 2 if (stage > 0 and k == 0) else 1
            ann.append(_basic_block(rng, cin, w, stride))
            cin = w
    ann += [AvgPool(32 // 2 ** (len(widths) - 1)), Flatten()]
    for h in head:
        ann += [Dense(_he(rng, (h, cin), cin), np.zeros(h)), ReLU()]
        cin = h
    ann.append(Dense(_he(rng, (classes, cin), cin), np.zeros(classes)))
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
    elif name == "resnet20":
        net = convert(resnet_ann([16, 32, 64], [3, 3, 3], [], seed), (3, 32, 32), synthetic_images(CALIB_IMAGES, seed),
                      threshold="p99.9", v_init="half", name="resnet20_cifar10_synthetic")
    elif name == "resnet19":
        net = convert(resnet_ann([128, 256, 512], [3, 3, 2], [256], seed), (3, 32, 32),
                      synthetic_images(CALIB_IMAGES, seed), threshold="p99.9", v_init="half",
                      name="resnet19_cifar10_synthetic")
    elif name == "yolov3-tiny":
        raise ConversionError("topology 'yolov3-tiny' needs transposed convolutions and multi-branch heads in the "
                              "converter, which are not implemented yet")
    else:
        raise ConversionError(f"unknown topology '{name}' (available: {', '.join(TOPOLOGIES)})")
    net.decisions["synthetic_weights"] = True
    net.decisions["input_max"] = 1.0
    return net
