"""Quantization agreement on random converted IF networks.

For each of N random networks of ``tests/quant_netgen.py`` (thresholds per layer, channel or
neuron), compile with ``input_max = 1.0`` on a preset and compare fixed-T (T = 16) predictions
on digit images with the float network's: prints, per preset, the distribution (median, 10th
percentile, worst) of the float network's own agreement when fed 8-bit inputs, of the
program's agreement, and of their difference. Usage: ``python benchmarks/bench_quantization.py
[--networks 30] [--samples 300] [--presets atsnn28 FILE.toml ...]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from atsnn.config import load_hardware  # noqa: E402
from atsnn.compiler.pipeline import compile_model  # noqa: E402
from atsnn.hwsim.datasets import digits_test_split  # noqa: E402
from quant_netgen import (  # noqa: E402
    THRESHOLD_MODES,
    agreement_figures,
    high_precision_hardware,
    random_if_network,
)  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=int, default=30)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--presets", nargs="*", default=["atsnn28", "high-precision"])
    args = ap.parse_args()
    x, _ = digits_test_split()
    x = x.reshape(-1, 1, 8, 8)
    calib, test = x[:100], x[100 : 100 + args.samples]
    for preset in args.presets:
        hw = high_precision_hardware() if preset == "high-precision" else load_hardware(preset)
        rows = []
        t0 = time.perf_counter()
        for i in range(args.networks):
            mode = THRESHOLD_MODES[i % len(THRESHOLD_MODES)]
            net = random_if_network(i, calib, mode=mode)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prog = compile_model(net, hw=hw, input_max=1.0)
            rows.append(agreement_figures(net, prog, test))
        f8 = np.array([r["float8"] for r in rows]) * 100
        fx = np.array([r["fixed"] for r in rows]) * 100
        d = fx - f8
        print(
            f"{preset}: {args.networks} networks x {len(test)} images, T = 16, "
            f"{time.perf_counter() - t0:.0f} s"
        )
        for name, v in (("float, 8-bit inputs", f8), ("fixed point", fx), ("fixed - float8", d)):
            print(
                f"  {name:20s} median {np.median(v):7.2f}  p10 {np.percentile(v, 10):7.2f}  "
                f"worst {v.min():7.2f}"
            )


if __name__ == "__main__":
    main()
