"""The PyTorch float SNN (benchmark baseline) follows the numpy float SNN (skipped without torch).

Stated tolerance: output membranes within 1e-3 of the numpy run relative to their range (float32
summation order differs, so a membrane landing exactly on a threshold may fire one step apart), and
the same predicted class for at least 98 % of inputs.
"""

import numpy as np
import pytest

pytest.importorskip("torch")

from atsnn.compiler.float_sim import run_float  # noqa: E402
from atsnn.compiler.float_sim_torch import run_float_torch  # noqa: E402
from atsnn.compiler.nir_import import import_nir  # noqa: E402
from atsnn.hwsim.datasets import digits_test_split  # noqa: E402
from netgen import random_inputs, random_network  # noqa: E402
from atsnn.workloads.demo import MODEL  # noqa: E402


def _agree(net, x, T):
    a, b = run_float(net, x, T).u, run_float_torch(net, x, T)
    rng = float(np.abs(a).max()) or 1.0
    assert float(np.abs(a - b).mean()) / rng < 1e-3
    assert (a[:, -1].argmax(axis=1) == b[:, -1].argmax(axis=1)).mean() >= 0.98


def test_digits_model():
    x, _ = digits_test_split()
    _agree(import_nir(MODEL), x[:200], 8)


@pytest.mark.parametrize("seed", range(6))
def test_random_networks(seed):
    net = random_network(seed)
    _agree(net, random_inputs(net, 20, seed), 6)
