"""The shipped ATSN-trained digits CNN (workloads/models/digits_cnn_atsn.nir): needs no torch."""

import json
import subprocess
import sys
from pathlib import Path

from atsnn.compiler.float_sim import run_float
from atsnn.compiler.nir_import import import_nir
from atsnn.compiler.pipeline import compile_model
from atsnn.hwsim.engine import simulate
from atsnn.workloads.digits import load_split

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "workloads" / "models" / "digits_cnn_atsn.nir"
META = MODEL.with_suffix(".json")


def test_shipped_atsn_model_compiles_and_keeps_its_accuracy_in_fixed_point():
    """Fixed-point accuracy on the digits test split at T = 4 within 3 points of the float-SNN accuracy
    recorded in the JSON (which the imported float network reproduces to within one image)."""
    meta = json.loads(META.read_text())
    net = import_nir(MODEL)
    assert [l.neuron for l in net.layers] == ["if", "if", "integrator"]
    prog = compile_model(net)
    assert prog.early_exit
    _, _, x, y = load_split()
    recorded = meta["snn_float_test_accuracy"]["4"]
    fl = float((run_float(net, x, 4).u[:, -1].argmax(axis=1) == y).mean())
    assert abs(fl - recorded) <= 1.0 / len(y) + 1e-9
    tr = simulate(prog, x, y, T=4)
    fixed = float((tr.u[:, -1].argmax(axis=1) == y).mean())
    assert abs(fixed - recorded) <= 0.03


def test_shipped_atsn_json_compares_l_imp_with_ce():
    meta = json.loads(META.read_text())
    for res in (meta, meta["baseline_ce"]):
        assert set(res["snn_float_test_accuracy"]) == {"1", "2", "3", "4", "8"}
    assert meta["threshold"] == "clip" and meta["v_init"] == "0.5*theta"
    assert meta["hyperparameters"]["T"] == 4


def test_frontend_and_model_load_without_torch():
    """With torch unavailable, importing the front end and compiling the shipped model still work;
    only calling the torch front end fails, with an ImportError that says how to install torch."""
    code = f"""
import sys
sys.modules["torch"] = None
import atsnn.compiler.torch_frontend as tf
from atsnn.compiler.nir_import import import_nir
from atsnn.compiler.pipeline import compile_model
compile_model(import_nir({str(MODEL)!r}))
try:
    tf.ann_from_torch(object())
except ImportError as exc:
    assert "atsnn[torch]" in str(exc), exc
else:
    raise SystemExit("no ImportError")
try:
    from atsnn.compiler.torch_frontend import ClipReLU
except ImportError:
    pass
else:
    raise SystemExit("ClipReLU without torch")
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
