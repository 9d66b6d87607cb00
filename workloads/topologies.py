"""CIFAR-scale and detection topologies with seeded synthetic weights (no data can be downloaded here).

``build(name, seed=0)`` returns a :class:`FloatNetwork` converted from an ANN
with He-initialised weights; thresholds are the 99.9th percentile of the ANN
activations on seeded synthetic images, so firing rates land in a realistic
range. ``decisions['synthetic_weights']`` is True and every report using
these says so. A user with trained weights passes them through the same
converter (atsnn.compiler.convert).

- ``vgg16``: CIFAR-10 VGG16 (13 conv 3x3 + FC 512-512-10), 2x2 average pooling.
- ``resnet20``: CIFAR ResNet-20 (16-32-64 channels, 3 basic blocks per stage, 1x1
  projection shortcuts at the strided stage entries, global average pool, FC 10).
- ``resnet19``: the ResNet-19 of the tdBN / ATSN papers (128-256-512 channels, 3-3-2 basic
  blocks, global average pool, FC 256-10).
- ``yolov3-tiny``: seed 004's Spiking YOLOv3-tiny at 416x416 (its Table 1): 13 conv+BN+ReLU
  layers with stride-2 convolutions in place of max-pooling, a 13x13 head (Conv14-Conv15), and a
  26x26 head fed by a 3x3 stride-2 transposed convolution (in place of upsampling) concatenated
  with Conv9's output (Conv16, ConvTranspose1, Conv17-Conv18); 255 = 3 x (80 + 5) channels per head
  (MS COCO). Channel-wise 99.9th-percentile thresholds (seed 004 eq. 15). Both heads are
  non-firing integrators read out at the last timestep (no early exit).
"""

from __future__ import annotations

import numpy as np

from atsnn.errors import ConversionError
from atsnn.compiler.convert import (AvgPool, BatchNorm, Concat, Conv, ConvTranspose, Dense, Flatten, ReLU, Residual, Route,
                              Tap, convert)
from atsnn.compiler.ir import FloatNetwork
from atsnn.hwsim.datasets import synthetic_images  # noqa: F401  (re-exported: the topologies' calibration images)

TOPOLOGIES = ("vgg16", "resnet19", "resnet20", "yolov3-tiny")
#: seed 004 Table 1: (filters, kernel, stride) of Conv1..Conv13, the backbone
YOLO_BACKBONE = [(16, 3, 1), (16, 3, 2), (32, 3, 1), (32, 3, 2), (64, 3, 1), (64, 3, 2), (128, 3, 1), (128, 3, 2),
                 (256, 3, 1), (256, 3, 2), (512, 3, 1), (1024, 3, 1), (256, 1, 1)]
YOLO_INPUT = (3, 416, 416)
YOLO_HEAD_CHANNELS = 255  # 3 anchors x (80 COCO classes + 4 box + 1 objectness)
YOLO_CALIB_IMAGES = 2
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


def yolov3_tiny_ann(seed: int = 0, head_channels: int = YOLO_HEAD_CHANNELS) -> list:
    """Seed 004 Table 1 as converter specs, He-initialised, BN folded (synthetic weights)."""
    rng = np.random.default_rng(seed)

    def dbr(n, cin, cout, k, stride):
        return [Conv(_he(rng, (cout, cin, k, k), cin * k * k), None, stride=stride, padding=k // 2, name=f"Conv{n}"),
                _bn(rng, cout), ReLU()]

    ann, c = [], YOLO_INPUT[0]
    for i, (f, k, s) in enumerate(YOLO_BACKBONE, start=1):
        ann += dbr(i, c, f, k, s)
        c = f
        if i == 9:
            ann.append(Tap("Conv9"))
    ann.append(Tap("Conv13"))
    ann += dbr(14, 256, 512, 3, 1)
    ann.append(Conv(_he(rng, (head_channels, 512, 1, 1), 512), rng.normal(0, 0.01, head_channels), name="Conv15"))
    ann.append(Route("Conv13"))  # Conv15 becomes the 13x13 output head
    ann += dbr(16, 256, 128, 1, 1)
    ann += [ConvTranspose(_he(rng, (128, 128, 3, 3), 128 * 9 / 4), None, stride=2, padding=1, output_padding=1,
                          name="ConvTranspose1"),  # 13x13 -> 26x26 instead of upsampling
            _bn(rng, 128), ReLU(), Concat("Conv9")]  # route: ConvTranspose1 then Conv9, 384 channels
    ann += dbr(17, 128 + 256, 256, 3, 1)
    ann.append(Conv(_he(rng, (head_channels, 256, 1, 1), 256), rng.normal(0, 0.01, head_channels), name="Conv18"))
    return ann


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
        net = convert(yolov3_tiny_ann(seed), YOLO_INPUT, synthetic_images(YOLO_CALIB_IMAGES, seed, YOLO_INPUT),
                      threshold="channel-p99.9", v_init="half", name="yolov3_tiny_416_synthetic")
    else:
        raise ConversionError(f"unknown topology '{name}' (available: {', '.join(TOPOLOGIES)})")
    net.decisions["synthetic_weights"] = True
    net.decisions["input_max"] = 1.0
    return net
