"""Random converted IF networks for quantization studies (docs/hardware.md sec. 2, 9).

Each network is a ReLU ANN with random weights on 8x8 digit images (dense, strided or padded conv,
sum pooling, flatten; 2-4 weighted layers, widths 4-64) turned into an IF SNN by max-activation
normalisation: the threshold of a layer is the largest ReLU activation the calibration images
produce, per layer, per channel or per neuron (dense layers: a channel is a neuron). The readout is
class-balanced: its biases are shifted so that each class wins on about as many calibration images.
"""

from __future__ import annotations

import numpy as np

from atsnn.program import Pool
from atsnn.compiler.ir import FloatLayer, FloatNetwork, FloatSynapse
from atsnn.compiler.nir_import import conv_out_shape
from atsnn.hwsim.ops import apply_synapse, synapse_input

THRESHOLD_MODES = ("layer", "channel", "neuron")


def _ann_current(syn: FloatSynapse, src: np.ndarray) -> np.ndarray:
    xi = synapse_input(syn, src.astype(np.float32))
    return apply_synapse(syn, xi, syn.weight.astype(np.float32)).astype(np.float64)


def _thresholds(act: np.ndarray, mode: str) -> np.ndarray:
    """Per output channel, the max-activation threshold of ``act`` (samples, C, ...)."""
    c = act.shape[1]
    per = act.reshape(act.shape[0], c, -1)
    top = max(float(per.max()), 1e-3)
    if mode == "layer":
        return np.full(c, top)
    # channel; "neuron" differs for dense layers only, where a channel is one neuron. A channel
    # that never activates on the calibration images keeps the layer's threshold
    th = per.max(axis=(0, 2))
    return np.where(th > 1e-3 * top, th, top)


def random_if_network(
    seed: int, calib: np.ndarray, *, mode: str = "channel", classes: int = 10
) -> FloatNetwork:
    """A random converted IF network on ``calib`` images ``(n, 1, 8, 8)`` in [0, 1] (see above)."""
    rng = np.random.default_rng(seed)
    shape: tuple[int, ...] = (1, 8, 8)
    layers: list[FloatLayer] = []
    src_name, act = "input", np.asarray(calib, dtype=np.float64)
    n_hidden = int(rng.integers(1, 4))
    conv_first = rng.random() < 0.6
    for i in range(n_hidden):
        name = f"l{i}"
        if conv_first and len(shape) == 3 and shape[1] >= 3:
            cout = int(rng.choice([4, 8, 16, 32]))
            k = int(rng.choice([2, 3])) if shape[1] >= 4 else 2
            stride = int(rng.choice([1, 2]))
            pad = int(rng.integers(0, 2)) if k == 3 else 0
            pool = None
            in_shape = shape
            if rng.random() < 0.3 and shape[1] >= 4:
                pool = Pool(kernel=(2, 2), stride=(2, 2), padding=(0, 0))
                in_shape = (shape[0], shape[1] // 2, shape[2] // 2)
            w = rng.normal(0, np.sqrt(2.0 / (in_shape[0] * k * k)), (cout, in_shape[0], k, k))
            _, oh, ow = conv_out_shape(in_shape, w.shape, (stride, stride), (pad, pad))
            if oh < 1 or ow < 1:
                break
            if pool is not None:
                w = w / 4.0  # sum pooling: the mean pool of the ANN
            syn = FloatSynapse(
                source=src_name,
                op="conv2d",
                weight=w,
                input_shape=in_shape,
                stride=(stride, stride),
                padding=(pad, pad),
                pool=pool,
            )
            out_shape: tuple[int, ...] = (cout, oh, ow)
        else:
            n_in = int(np.prod(shape))
            width = int(rng.choice([4, 8, 16, 32, 64]))
            w = rng.normal(0, np.sqrt(2.0 / n_in), (width, n_in))
            syn = FloatSynapse(
                source=src_name, op="dense", weight=w, input_shape=(n_in,), flatten=len(shape) > 1
            )
            out_shape = (width,)
        bias = rng.normal(0, 0.05, out_shape[0])
        cur = _ann_current(syn, act).reshape((act.shape[0],) + out_shape)
        cur += bias.reshape((1, -1) + (1,) * (len(out_shape) - 1))
        a = np.maximum(cur, 0.0)
        th = _thresholds(a, mode)
        layers.append(
            FloatLayer(
                name=name,
                neuron="if",
                shape=out_shape,
                synapses=[syn],
                bias=bias,
                threshold=th,
                v_init=np.zeros(out_shape[0]),
            )
        )
        # the SNN's rate is a / threshold, clipped at 1: the next ANN layer sees that
        scale = th.reshape((1, -1) + (1,) * (len(out_shape) - 1))
        act = np.minimum(a / scale, 1.0)
        src_name, shape = name, out_shape
    n_in = int(np.prod(shape))
    w = rng.normal(0, np.sqrt(1.0 / n_in), (classes, n_in))
    syn = FloatSynapse(
        source=src_name, op="dense", weight=w, input_shape=(n_in,), flatten=len(shape) > 1
    )
    logits = _ann_current(syn, act).reshape(act.shape[0], classes)
    bias = np.zeros(classes)
    for _ in range(50):  # class balance: lower the bias of classes that win too often
        wins = np.bincount((logits + bias).argmax(axis=1), minlength=classes) / len(logits)
        bias -= 0.5 * (wins - 1.0 / classes) * logits.std()
    layers.append(
        FloatLayer(
            name="out",
            neuron="integrator",
            shape=(classes,),
            synapses=[syn],
            bias=bias,
            threshold=np.ones(classes),
            v_init=np.zeros(classes),
        )
    )
    return FloatNetwork(name=f"q{mode}{seed}", input_shape=(1, 8, 8), layers=layers, output="out")


def eight_bit(x: np.ndarray, input_max: float = 1.0, bits: int = 8) -> np.ndarray:
    """``x`` rounded to the input grid of ``bits`` unsigned bits over ``[0, input_max]``."""
    top = 2**bits - 1
    return np.clip(np.rint(np.asarray(x) / input_max * top), 0, top) * (input_max / top)


def agreement_figures(net: FloatNetwork, program, x: np.ndarray, T: int = 16) -> dict[str, float]:
    """Fixed-T agreement of predictions (argmax of the output after ``T`` steps) on images ``x``:
    ``float8`` = float network on 8-bit inputs vs on real inputs, ``fixed`` = the program vs the
    float network on real inputs, ``fixed_vs_float8`` = the program vs the float network on 8-bit
    inputs."""
    from atsnn.compiler.float_sim import run_float
    from atsnn.hwsim.engine import simulate

    ref = run_float(net, x, T).u[:, -1].argmax(axis=1)
    f8 = run_float(net, eight_bit(x), T).u[:, -1].argmax(axis=1)
    fx = simulate(program, x, T=T).u[:, -1].argmax(axis=1)
    return dict(
        float8=float((f8 == ref).mean()),
        fixed=float((fx == ref).mean()),
        fixed_vs_float8=float((fx == f8).mean()),
    )


def high_precision_hardware():
    """``atsnn28`` with 12-bit weights, 24-bit membranes and the widest exact accumulator: the
    semantics-only baseline of the quantization studies."""
    from atsnn.config import load_hardware

    return load_hardware("atsnn28").replace(
        numeric={"weight_bits": 12, "membrane_bits": 24, "accumulator_bits": 24,
                 "threshold_bits": 23, "bias_bits": 24}
    )
