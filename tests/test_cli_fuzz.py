"""Bad inputs and output paths at the command line: one ``error:`` line and exit 2, or a correct
result; nothing outside the command's own output changes, no temporary is left, no hang.

Each named case runs ``atsnn`` in a subprocess under a timeout inside a scratch directory that
holds a compiled program, a run directory, data files and an unrelated file; the hash of every
file there is compared before and after (the case's declared output path excluded). The
Hypothesis tests damage ``program.json`` fields and CLI values at random.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "workloads" / "models" / "digits_mlp.nir"
TIMEOUT_S = 120


def atsnn(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run the CLI; a hang is a test failure (TimeoutExpired propagates)."""
    return subprocess.run([sys.executable, "-m", "atsnn.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=TIMEOUT_S, env={**os.environ, "PYTHONPATH": str(ROOT)})


def tree_hash(root: Path, exclude: Path | None = None) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if exclude is not None and (p == exclude or exclude in p.parents):
            continue
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.is_dir():
            out[str(p.relative_to(root)) + "/"] = "dir"
    return out


def assert_clean_failure(r: subprocess.CompletedProcess) -> str:
    """Exit 2, exactly one ``error:`` line on stderr, no traceback; returns that line."""
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    errors = [l for l in lines if l.startswith("error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


def no_temporaries(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(".*-tmp-*")]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A compiled program and a run directory, built once."""
    d = tmp_path_factory.mktemp("base")
    r = atsnn(["compile", str(MODEL), "-o", "prog"], d)
    assert r.returncode == 0, r.stderr
    r = atsnn(["simulate", "prog", "--data", "digits", "--samples", "20", "--policy", "fixed",
               "-o", "run", "--quiet"], d)
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture
def work(base, tmp_path) -> Path:
    """Scratch copy of the base with data files and an unrelated user file."""
    w = tmp_path / "w"
    shutil.copytree(base, w)
    (w / "notes.txt").write_text("user file\n")
    rng = np.random.default_rng(0)
    np.savez(w / "data.npz", x=rng.random((6, 64)), y=np.arange(6) % 10)
    return w


def _edit_json(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _layer0(doc):
    return doc["layers"][0]


def _set(key, value):
    def fn(doc):
        _layer0(doc)[key] = value
    return fn


def _set_input(key, value):
    def fn(doc):
        doc["input"][key] = value
    return fn


def _npz_edit(w: Path, key_fn):
    p = w / "bad" / "arrays.npz"
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    key_fn(arrays)
    np.savez_compressed(p, **arrays)


def _first(arrays, suffix):
    return next(k for k in sorted(arrays) if k.endswith(suffix))


# (case id, damage to a copy 'bad' of the program) -> simulate must fail cleanly
PROGRAM_DAMAGE = {
    "threshold_abc": lambda w: _edit_json(w / "bad/program.json", _set("threshold", "abc")),
    "threshold_8191_7": lambda w: _edit_json(w / "bad/program.json", _set("threshold", 8191.7)),
    "shape_abc": lambda w: _edit_json(w / "bad/program.json", _set("shape", "abc")),
    "leak_shift_string": lambda w: _edit_json(w / "bad/program.json", _set("leak_shift", "1")),
    "early_exit_no": lambda w: _edit_json(w / "bad/program.json",
                                          lambda d: d.__setitem__("early_exit", "no")),
    "dense_renamed_conv2d": lambda w: _edit_json(
        w / "bad/program.json", lambda d: _layer0(d)["synapses"][0].__setitem__("op", "conv2d")),
    "pes_used_1000": lambda w: _edit_json(
        w / "bad/program.json", lambda d: _layer0(d)["mapping"].__setitem__("pes_used", 1000)),
    "input_bits_0": lambda w: _edit_json(w / "bad/program.json", _set_input("bits", 0)),
    "input_scale_zero": lambda w: _edit_json(w / "bad/program.json", _set_input("scale", 0.0)),
    "input_scale_negative": lambda w: _edit_json(w / "bad/program.json", _set_input("scale", -1.0)),
    "input_scale_nan_hang": lambda w: (w / "bad/program.json").write_text(
        _nan_scale(w / "bad/program.json")),
    "weight_wrong_shape": lambda w: _npz_edit(
        w, lambda a: a.__setitem__(_first(a, "_s0_weight"), a[_first(a, "_s0_weight")][:, :-1])),
    "float_weights": lambda w: _npz_edit(
        w, lambda a: a.__setitem__(_first(a, "_s0_weight"),
                                   a[_first(a, "_s0_weight")].astype(np.float32) + 0.5)),
    "v_init_wrong_length": lambda w: _npz_edit(
        w, lambda a: a.__setitem__(_first(a, "_vinit"), a[_first(a, "_vinit")][:-1])),
    "bias_wrong_length": lambda w: _npz_edit(
        w, lambda a: a.__setitem__(_first(a, "_bias"), np.append(a[_first(a, "_bias")], 0))),
    "chunk_sizes_wrong_length": lambda w: _npz_edit(
        w, lambda a: a.__setitem__(_first(a, "_chunks"), a[_first(a, "_chunks")][:-1])),
    "arrays_truncated": lambda w: (w / "bad/arrays.npz").write_bytes(
        (w / "bad/arrays.npz").read_bytes()[:100]),
    "program_json_binary": lambda w: (w / "bad/program.json").write_bytes(bytes(range(256))),
}


def _nan_scale(path: Path) -> str:
    text = path.read_text()
    doc = json.loads(text)
    doc["input"]["scale"] = float("nan")
    return json.dumps(doc)


@pytest.mark.parametrize("case", sorted(PROGRAM_DAMAGE))
def test_damaged_program_is_refused(work, case):
    shutil.copytree(work / "prog", work / "bad")
    PROGRAM_DAMAGE[case](work)
    before = tree_hash(work, exclude=work / "out")
    r = atsnn(["simulate", "bad", "--data", "data.npz", "-o", "out", "--quiet"], work)
    line = assert_clean_failure(r)
    assert "bad" in line, line
    assert tree_hash(work, exclude=work / "out") == before
    assert not (work / "out").exists() and not no_temporaries(work)


# (case id) -> (args, files to write first); each must fail cleanly and change nothing
def _npz(path: Path, **arrays):
    np.savez(path, **arrays)


BAD_CALLS = {
    "simulate_out_dot": (["simulate", "prog", "--data", "data.npz", "-o", "."], None),
    "simulate_out_empty": (["simulate", "prog", "--data", "data.npz", "-o", ""], None),
    "out_is_program": (["simulate", "prog", "--data", "data.npz", "-o", "prog"], None),
    "out_is_parent_of_data": (["simulate", "prog", "--data", "run/x.npz", "-o", "run"],
                              lambda w: _npz(w / "run/x.npz", x=np.zeros((2, 64)))),
    "out_dir_with_unrelated_files": (["simulate", "prog", "--data", "data.npz", "-o", "mine"],
                                     lambda w: ((w / "mine").mkdir(),
                                                (w / "mine/keep.txt").write_text("x"))),
    "compile_out_dir_with_unrelated_files": (["compile", str(MODEL), "-o", "mine"],
                                             lambda w: ((w / "mine").mkdir(),
                                                        (w / "mine/keep.txt").write_text("x"))),
    "compile_out_is_run": (["compile", str(MODEL), "-o", "run"], None),
    "out_existing_file": (["simulate", "prog", "--data", "data.npz", "-o", "notes.txt"], None),
    "out_under_file": (["simulate", "prog", "--data", "data.npz", "-o", "notes.txt/sub"], None),
    "force_never_removes_cwd": (["simulate", "prog", "--data", "data.npz", "-o", ".", "--force"],
                                None),
    "force_never_removes_input": (["simulate", "prog", "--data", "data.npz", "-o", "prog",
                                   "--force"], None),
    "seed_negative": (["topology", "vgg16", "-o", "t.nir", "--seed", "-1"], None),
    "T_100000": (["simulate", "prog", "--data", "data.npz", "-o", "out", "--T", "100000"], None),
    "T_zero": (["simulate", "prog", "--data", "data.npz", "-o", "out", "--T", "0"], None),
    "theta_nan": (["simulate", "prog", "--data", "data.npz", "-o", "out", "--theta", "nan"], None),
    "samples_zero": (["simulate", "prog", "--data", "data.npz", "-o", "out", "--samples", "0"],
                     None),
    "dram_empty": (["simulate", "prog", "--data", "data.npz", "-o", "out", "--dram", ""], None),
    "input_events_negative": (["estimate", "prog", "--input-events", "-1"], None),
    "input_events_nan": (["estimate", "prog", "--input-events", "nan"], None),
    "v_init_frac_nan": (["compile", str(MODEL), "-o", "out", "--v-init-frac", "nan"], None),
    "v_init_frac_5": (["compile", str(MODEL), "-o", "out", "--v-init-frac", "5"], None),
    "v_init_frac_negative": (["compile", str(MODEL), "-o", "out", "--v-init-frac", "-1"], None),
    "input_max_zero": (["compile", str(MODEL), "-o", "out", "--input-max", "0"], None),
    "input_max_1e-30": (["compile", str(MODEL), "-o", "out", "--input-max", "1e-30"], None),
    "calib_zero_samples": (["compile", str(MODEL), "-o", "out", "--calib", "c0.npz"],
                           lambda w: _npz(w / "c0.npz", x=np.zeros((0, 64)))),
    "rtl_export_out_is_program": (["rtl", "export", "-o", "prog", "--no-lint"], None),
    "rtl_export_out_foreign": (["rtl", "export", "-o", "mine", "--no-lint"],
                               lambda w: ((w / "mine").mkdir(), (w / "mine/k.v").write_text("x"))),
    "usage_error_is_one_line": (["simulate", "--bogus-flag"], None),
    "unknown_command": (["bogus"], None),
    "npz_x_0d": (["simulate", "prog", "--data", "x0.npz", "-o", "out"],
                 lambda w: _npz(w / "x0.npz", x=np.array(3.0))),
    "labels_out_of_range": (["simulate", "prog", "--data", "y.npz", "-o", "out"],
                            lambda w: _npz(w / "y.npz", x=np.zeros((3, 64)), y=np.array([0, 1, 10]))),
    "labels_negative": (["simulate", "prog", "--data", "y.npz", "-o", "out"],
                        lambda w: _npz(w / "y.npz", x=np.zeros((3, 64)), y=np.array([0, -1, 2]))),
    "labels_fractional": (["simulate", "prog", "--data", "y.npz", "-o", "out"],
                          lambda w: _npz(w / "y.npz", x=np.zeros((3, 64)), y=np.array([0, 1.5, 2]))),
    "labels_nan": (["simulate", "prog", "--data", "y.npz", "-o", "out"],
                   lambda w: _npz(w / "y.npz", x=np.zeros((3, 64)), y=np.array([0, np.nan, 2]))),
    "labels_1e20": (["simulate", "prog", "--data", "y.npz", "-o", "out"],
                    lambda w: _npz(w / "y.npz", x=np.zeros((3, 64)), y=np.array([0, 1e20, 2]))),
    "more_labels_than_samples_with_samples": (
        ["simulate", "prog", "--data", "y.npz", "-o", "out", "--samples", "2"],
        lambda w: _npz(w / "y.npz", x=np.zeros((3, 64)), y=np.array([0, 1, 2, 3]))),
    "inputs_above_range_0_16": (["simulate", "prog", "--data", "big.npz", "-o", "out"],
                                lambda w: _npz(w / "big.npz", x=np.full((3, 64), 16.0),
                                               y=np.array([0, 1, 2]))),
    "inputs_above_range_0_255": (["simulate", "prog", "--data", "big.npz", "-o", "out"],
                                 lambda w: _npz(w / "big.npz", x=np.full((3, 64), 255.0),
                                                y=np.array([0, 1, 2]))),
    "text_file_as_data": (["simulate", "prog", "--data", "notes.txt", "-o", "out"], None),
    "data_is_directory": (["simulate", "prog", "--data", "run", "-o", "out"], None),
    "program_path_is_file": (["simulate", "notes.txt", "--data", "data.npz", "-o", "out"], None),
    "hw_is_directory": (["config", "show", "--hw", "run"], None),
    "report_empty_csv": (["report", "run", "-o", "rep"],
                         lambda w: (w / "run/per_sample.csv").write_text("")),
    "report_truncated_csv": (["report", "run", "-o", "rep"],
                             lambda w: (w / "run/energy_breakdown.csv").write_text(
                                 (w / "run/energy_breakdown.csv").read_text()[:7])),
    "report_binary_csv": (["report", "run", "-o", "rep"],
                          lambda w: (w / "run/pe_utilisation.csv").write_bytes(bytes(range(256)))),
    "report_summary_missing_keys": (["report", "run", "-o", "rep"],
                                    lambda w: (w / "run/summary.json").write_text('{"program": 1}')),
    "report_layer_bogus_leaves_no_pngs": (["report", "run", "-o", "rep", "--layer", "bogus"], None),
    "costs_energy_scalar": (["config", "show", "--costs", "c.toml"],
                            lambda w: _costs(w, lambda s: re.sub(
                                r"\[\[energy\]\].*?(?=\n\[\[|\Z)", "", s, flags=re.S).replace(
                                "[meta]", "energy = 5\n[meta]", 1))),
    "costs_leakage_list": (["config", "show", "--costs", "c.toml"],
                           lambda w: _costs(w, lambda s: re.sub(
                               r"\[\[leakage\]\].*?(?=\n\[\[|\Z)", "", s, flags=re.S).replace(
                               "[meta]", "leakage = [1, 2]\n[meta]", 1))),
    "costs_technology_negative": (["config", "show", "--costs", "c.toml"],
                                  lambda w: _costs(w, lambda s: re.sub(
                                      r"technology_nm = \d+", "technology_nm = -5", s))),
    "costs_clock_negative": (["config", "show", "--costs", "c.toml"],
                             lambda w: _costs(w, lambda s: re.sub(
                                 r"characterised_clock_hz = [0-9.e+]+",
                                 "characterised_clock_hz = -1.0", s))),
    "hw_accumulator_bits_40": (["config", "show", "--hw", "h.toml"],
                               lambda w: (w / "h.toml").write_text(re.sub(
                                   r"accumulator_bits = \d+", "accumulator_bits = 40",
                                   (ROOT / "atsnn/presets/hw/atsnn28.toml").read_text()))),
    "hw_rows_string": (["config", "show", "--hw", "h.toml"],
                       lambda w: _hw(w, lambda s: re.sub(r"rows = \d+", 'rows = "16"', s))),
    "hw_clock_nan": (["config", "show", "--hw", "h.toml"],
                     lambda w: _hw(w, lambda s: re.sub(r"clock_hz = [0-9.e+]+", "clock_hz = nan",
                                                       s))),
    "hw_section_scalar": (["compile", str(MODEL), "--hw", "h.toml", "-o", "out"],
                          lambda w: _hw(w, lambda s: "cycles = 3\n" + s.replace("[cycles]", "[x]"))),
    "costs_energy_infinite": (["config", "show", "--costs", "c.toml"],
                              lambda w: _costs(w, lambda s: re.sub(r"energy_pj = [0-9.e+-]+",
                                                                   "energy_pj = inf", s, count=1))),
    "costs_blank_source": (["config", "show", "--costs", "c.toml"],
                           lambda w: _costs(w, lambda s: re.sub(r'source = "[^"]*"', 'source = " "',
                                                                s, count=1))),
    "memory_estimate_refused": (["simulate", "prog", "--data", "many.npz", "-o", "out", "--T",
                                 "4096", "--policy", "fixed"],
                                lambda w: _npz(w / "many.npz", x=np.random.default_rng(0).random(
                                    (60000, 64), dtype=np.float32))),
    "demo_out_dot": (["demo", "-o", "."], None),
    "demo_out_foreign": (["demo", "-o", "mine"],
                         lambda w: ((w / "mine").mkdir(), (w / "mine/keep.txt").write_text("x"))),
    "demo_out_is_program": (["demo", "-o", "prog"], None),
    "reports_out_foreign": (["reports", "--out", "mine"],
                            lambda w: ((w / "mine").mkdir(), (w / "mine/keep.md").write_text("x"))),
    "topology_existing_file": (["topology", "vgg16", "-o", "notes.txt"], None),
    "report_negative_energy": (["report", "run", "-o", "rep"],
                               lambda w: _csv_cell(w / "run/energy_breakdown.csv", 1, 3, "-5.0")),
    "report_non_numeric_cycles": (["report", "run", "-o", "rep"],
                                  lambda w: _csv_cell(w / "run/per_sample.csv", 2, 6, "abc")),
    "report_exit_step_above_T": (["report", "run", "-o", "rep"],
                                 lambda w: _csv_cell(w / "run/per_sample.csv", 1, 5, "99")),
    "report_missing_column": (["report", "run", "-o", "rep"],
                              lambda w: (w / "run/pe_utilisation.csv").write_text(
                                  "layer,pe\nfc0,0\n")),
    "report_summary_policy_mismatch": (["report", "run", "-o", "rep"],
                                       lambda w: _edit_json(w / "run/summary.json", lambda d: d[
                                           "policies"].__setitem__("atsn", d["policies"]["fixed"]))),
    "report_summary_clock_string": (["report", "run", "-o", "rep"],
                                    lambda w: _edit_json(w / "run/summary.json",
                                                         lambda d: d.__setitem__("clock_hz", "5"))),
    "report_samples_disagree": (["report", "run", "-o", "rep"],
                                lambda w: _edit_json(w / "run/summary.json",
                                                     lambda d: d.__setitem__("samples", 21))),
}


def _hw(w: Path, fn) -> None:
    (w / "h.toml").write_text(fn((ROOT / "atsnn/presets/hw/atsnn28.toml").read_text()))


def _csv_cell(path: Path, row: int, col: int, value: str) -> None:
    """Replace one cell of a CSV (row 0 is the header)."""
    lines = path.read_text().splitlines()
    cells = lines[row].split(",")
    cells[col] = value
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def _costs(w: Path, fn) -> None:
    text = (ROOT / "atsnn/presets/costs/sata28-500mhz.toml").read_text()
    (w / "c.toml").write_text(fn(text))


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_call_is_refused_and_changes_nothing(work, case):
    args, prepare = BAD_CALLS[case]
    if prepare is not None:
        prepare(work)
    out = None
    flag = "-o" if "-o" in args else ("--out" if "--out" in args else None)
    if flag is not None:
        o = args[args.index(flag) + 1]
        out = (work / o) if o not in ("", ".") else None
    before = tree_hash(work, exclude=out if out is not None and not out.exists() else None)
    r = atsnn(args, work)
    assert_clean_failure(r)
    after = tree_hash(work, exclude=out if out is not None and not out.exists() else None)
    assert after == before
    assert not no_temporaries(work)
    if out is not None and out.name in ("out", "rep", "t.nir"):
        assert not out.exists()


def test_out_readonly_location(work):
    ro = work / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.fail("running as a user who can write a 0555 directory; the check needs "
                        "another location") if os.geteuid() != 0 else None
        r = atsnn(["simulate", "prog", "--data", "data.npz", "-o", "ro/run", "--quiet"], work)
        if os.geteuid() == 0:  # root writes anyway: the run must then succeed correctly
            assert r.returncode == 0, r.stderr
        else:
            assert_clean_failure(r)
    finally:
        ro.chmod(0o755)


def test_rerun_into_own_output_and_force(work):
    r = atsnn(["simulate", "prog", "--data", "data.npz", "-o", "run", "--quiet"], work)
    assert r.returncode == 0, r.stderr
    assert json.loads((work / "run/summary.json").read_text())["samples"] == 6
    (work / "foreign").mkdir()
    (work / "foreign/a.txt").write_text("x")
    r = atsnn(["simulate", "prog", "--data", "data.npz", "-o", "foreign", "--quiet", "--force"], work)
    assert r.returncode == 0, r.stderr
    assert not (work / "foreign/a.txt").exists() and (work / "foreign/summary.json").is_file()


def test_clip_note_and_result(work):
    _npz(work / "big.npz", x=np.full((3, 64), 16.0), y=np.array([0, 1, 2]))
    r = atsnn(["simulate", "prog", "--data", "big.npz", "-o", "out", "--quiet", "--clip",
               "--policy", "fixed"], work)
    assert r.returncode == 0, r.stderr
    assert "192 input values" in r.stderr  # 3 samples x 64 pixels, all above the range


def test_stale_temporary_is_removed_and_umask_kept(work):
    stale = work / ".out-tmp-999999-abc"  # no process has this pid
    stale.mkdir()
    (stale / "junk").write_bytes(b"x" * 100)
    old = os.umask(0o027)
    try:
        r = subprocess.run([sys.executable, "-m", "atsnn.cli", "simulate", "prog", "--data",
                            "data.npz", "-o", "out", "--quiet", "--policy", "fixed"], cwd=work,
                           capture_output=True, text=True, timeout=TIMEOUT_S,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    assert not stale.exists()
    assert (work / "out").stat().st_mode & 0o777 == 0o750
    assert (work / "out/summary.json").stat().st_mode & 0o777 == 0o640


#: text an operating system can pass as a command-line argument (no NUL byte)
ARGV_TEXT = st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=4)
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                        st.lists(st.integers(-3, 3), max_size=3))
FIELDS = st.sampled_from([("layers", 0, "threshold"), ("layers", 0, "leak_shift"),
                          ("layers", 0, "shape"), ("layers", 0, "v_reset"), ("layers", 0, "scale"),
                          ("layers", 0, "neuron"), ("layers", 0, "reset"), ("input", "scale"),
                          ("input", "bits"), ("input", "shape"), ("early_exit",), ("output",),
                          ("layers", 0, "synapses", 0, "stride"),
                          ("layers", 0, "synapses", 0, "max_input"),
                          ("layers", 0, "mapping", "pes_used"), ("at", "exp_mult")])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=FIELDS, value=JSON_VALUES)
def test_fuzzed_program_field(base, tmp_path_factory, field, value):
    w = tmp_path_factory.mktemp("fz")
    shutil.copytree(base / "prog", w / "bad")
    doc = json.loads((w / "bad/program.json").read_text())
    node = doc
    for k in field[:-1]:
        node = node[k]
    node[field[-1]] = value
    (w / "bad/program.json").write_text(json.dumps(doc))
    before = tree_hash(w, exclude=w / "out")
    r = atsnn(["simulate", "bad", "--data", "digits", "--samples", "5", "--policy", "fixed",
               "-o", "out", "--quiet"], w)
    if r.returncode != 0:
        assert_clean_failure(r)
        assert not (w / "out").exists()
    assert tree_hash(w, exclude=w / "out") == before
    assert not no_temporaries(w)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opt=st.sampled_from(["--T", "--theta", "--cl-init", "--tau-cl", "--samples"]),
       value=st.one_of(st.integers(-10**6, 10**6).map(str), st.floats().map(repr),
                       ARGV_TEXT))
def test_fuzzed_simulate_value(base, tmp_path_factory, opt, value):
    w = tmp_path_factory.mktemp("fv")
    r = atsnn(["simulate", str(base / "prog"), "--data", "digits", "--samples", "4",
               "--policy", "fixed", "-o", "out", "--quiet", opt, value], w)
    if r.returncode != 0:
        assert_clean_failure(r)
        assert not (w / "out").exists()
    else:
        assert (w / "out/summary.json").is_file()
    assert not no_temporaries(w)


# ---- random damage to hardware presets, cost tables and run directories (in-process CLI) ----

def run_main(args: list[str]) -> tuple[int, str]:
    """``atsnn.cli.main`` in this process: (exit code, stderr). An unexpected exception (a
    traceback for the user) propagates and fails the test."""
    import contextlib
    import io

    from atsnn.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(args)
    return rc, err.getvalue()


def assert_clean_main(rc: int, err: str) -> None:
    assert rc == 2, (rc, err)
    assert len([l for l in err.splitlines() if l.startswith("error:")]) == 1, err


TOML_VALUES = st.one_of(st.integers(-2**40, 2**40), st.floats(), st.booleans(),
                        st.text(max_size=5), st.lists(st.integers(-3, 3), max_size=3),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def _damage_table(doc: dict, path: list, value, action: str) -> None:
    node = doc
    for k in path[:-1]:
        node = node[k]
    if action == "delete":
        del node[path[-1]]
    elif action == "unknown":
        node[f"{path[-1]}_x"] = value
    else:
        node[path[-1]] = value


def _leaf_paths(doc, prefix=()) -> list:
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _leaf_paths(v, prefix + (k,)) or [prefix + (k,)]
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _leaf_paths(v, prefix + (i,)) or [prefix + (i,)]
    return out


HW_DOC = __import__("tomllib").loads((ROOT / "atsnn/presets/hw/atsnn28.toml").read_text())
COST_DOC = __import__("tomllib").loads(
    (ROOT / "atsnn/presets/costs/sata28-500mhz.toml").read_text())
ACTIONS = st.sampled_from(["set", "set", "set", "delete", "unknown"])


def _damaged_toml(file, doc, path, value, action):
    """Write ``doc`` to ``file`` with ``action`` applied at ``path`` (``value``); returns its folder."""
    import copy

    import tomli_w
    doc = copy.deepcopy(doc)
    _damage_table(doc, list(path), value, action)
    file.write_text(tomli_w.dumps(doc))
    return file.parent


@settings(max_examples=40, deadline=None)
@given(path=st.sampled_from(_leaf_paths(HW_DOC)), value=TOML_VALUES, action=ACTIONS)
def test_fuzzed_hardware_preset(tmp_path_factory, path, value, action):
    """A damaged preset is refused naming the key, or it is valid and compiles (or is refused)
    with one line; nothing but the output appears."""
    w = _damaged_toml(tmp_path_factory.mktemp("fh") / "h.toml", HW_DOC, path, value, action)
    rc, err = run_main(["config", "show", "--hw", str(w / "h.toml")])
    if rc != 0:
        assert_clean_main(rc, err)
        key = ".".join(str(p) for p in path[:2])
        assert key.split(".")[0] in err, (key, err)
        return
    rc, err = run_main(["compile", str(MODEL), "--hw", str(w / "h.toml"), "-o", str(w / "out")])
    if rc != 0:
        assert_clean_main(rc, err)
        assert not (w / "out").exists()
    else:
        assert (w / "out/program.json").is_file()
    assert sorted(p.name for p in w.iterdir()) in (["h.toml"], ["h.toml", "out"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(_leaf_paths(COST_DOC)), value=TOML_VALUES, action=ACTIONS)
@example(path=("leakage", 2, "component"), value="0", action="set")  # a renamed leakage entry
def test_fuzzed_cost_table(base, tmp_path_factory, path, value, action):
    """A damaged cost table is refused naming the key, or the estimate it prices is finite."""
    import math
    w = _damaged_toml(tmp_path_factory.mktemp("fc") / "c.toml", COST_DOC, path, value, action)
    rc, err = run_main(["config", "show", "--costs", str(w / "c.toml")])
    if rc != 0:
        assert_clean_main(rc, err)
        return
    import contextlib
    import io

    from atsnn.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["estimate", str(base / "prog"), "--rate", "0.1", "--costs",
                   str(w / "c.toml"), "--json"])
    assert rc == 0
    row = json.loads(out.getvalue())
    assert math.isfinite(row["energy_per_inference_uj"]) and row["energy_per_inference_uj"] >= 0


RUN_FILES = ["per_sample.csv", "per_layer_timestep.csv", "energy_breakdown.csv",
             "energy_per_timestep.csv", "pe_utilisation.csv", "summary.json"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(RUN_FILES), how=st.sampled_from(["cell", "truncate", "bytes"]),
       where=st.floats(0, 1), cell=st.one_of(st.text(max_size=4), st.floats().map(repr),
                                             st.integers(-10**9, 10**9).map(str)))
def test_fuzzed_run_directory(base, tmp_path_factory, name, how, where, cell):
    """A damaged run directory gives a full report or one error line and no report at all."""
    w = tmp_path_factory.mktemp("fr")
    shutil.copytree(base / "run", w / "run")
    p = w / "run" / name
    data = p.read_bytes()
    if how == "truncate":
        p.write_bytes(data[:int(where * len(data))])
    elif how == "bytes":
        i = int(where * (len(data) - 1))
        p.write_bytes(data[:i] + cell.encode("utf-8", "replace") + data[i + 1:])
    else:
        lines = data.decode().splitlines()
        r = 1 + int(where * (len(lines) - 2))
        cells = lines[r].split(",")
        cells[int(where * 997) % len(cells)] = cell.replace(",", ";").replace("\n", " ")
        lines[r] = ",".join(cells)
        p.write_text("\n".join(lines) + "\n")
    before = tree_hash(w)
    rc, err = run_main(["report", str(w / "run"), "-o", str(w / "rep")])
    if rc != 0:
        assert_clean_main(rc, err)
        assert not (w / "rep").exists()
    else:
        assert (w / "rep/index.html").is_file() and (w / "rep/summary.md").is_file()
    assert tree_hash(w, exclude=w / "rep") == before
    assert not no_temporaries(w)
