"""``atsnn sweep``: spec errors, the plan's shared jobs, Pareto fronts, and end-to-end sweeps on an
embedded LocalCluster and on a ``dask scheduler`` / ``dask worker`` cluster started here.

The end-to-end tests share one small spec (digits CNN on two arrays, two T, two DRAM models,
five policy points; the same CNN in analytic mode; an unsupported CubaLIF model that fails to
compile) and compare every table byte for byte with the embedded cluster's: through
``--scheduler``, with a worker killed mid-sweep, and interrupted then resumed. The exact points
are also checked against ``atsnn compile`` + ``atsnn simulate`` run one by one, the analytic ones
against ``atsnn estimate``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atsnn.cli import main

ROOT = Path(__file__).resolve().parents[1]
CUBALIF = ROOT / "tests" / "fixtures" / "nir" / "legacy_nir0.2.0_braille_cubalif_subtract.nir"
SAMPLES = 300
SPEC = f"""
name = "test"
description = "digits CNN on two arrays; analytic CNN; a model that does not compile"

[[models]]
name = "cnn"
source = "digits_cnn_clip"
samples = {SAMPLES}

[[models]]
name = "cnn_analytic"
source = "digits_cnn_clip"
mode = "analytic"
samples = 2
T = [4]

[[models]]
name = "cubalif"
source = "{CUBALIF}"
T = [4]

[[hardware.variants]]
label = "16x16"

[[hardware.variants]]
label = "8x8"
set = {{ "array.rows" = 8, "array.cols" = 8 }}

[axes]
T = [4, 8]
dram = ["lpddr4", "ddr3"]

[[axes.policies]]
policy = "fixed"

[[axes.policies]]
policy = "dtsnn"
theta = [0.1, 0.3]

[[axes.policies]]
policy = "atsn"
cl_init = [0.999]
tau_cl = [0.995, 0.999]
"""
#: cnn: 2 hw x 2 dram x 2 T x 5 policies; analytic: 2 x 2 x 1; cubalif: 2 x 2 x 1 x 5
TOTAL_POINTS = 40 + 4 + 20
STEP_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sweep_spec")
    p = d / "spec.toml"
    p.write_text(SPEC)
    return p


@pytest.fixture(scope="module")
def reference(spec_file, tmp_path_factory):
    """The spec run on an embedded LocalCluster with 2 workers: (store dir, result, CSV bytes)."""
    from atsnn.sweep.run import run_sweep
    out = tmp_path_factory.mktemp("sweep_ref") / "out"
    result = run_sweep(spec_file, out, workers=2)
    return out, result, (out / "points.csv").read_bytes()


def _points(out: Path) -> int:
    d = out / "points"
    return len(list(d.glob("*.json"))) if d.is_dir() else 0


def _wait(cond, timeout_s: float, what: str, step_s: float = 0.02):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(step_s)


@contextmanager
def dask_cluster(tmp: Path, n_workers: int = 2):
    """A ``dask scheduler`` on 127.0.0.1 (port chosen by the OS, read from its scheduler file)
    and ``n_workers`` ``dask worker --no-nanny`` processes (1 thread); stopped on exit."""
    from atsnn.sweep.run import _identity_of
    sched_file = tmp / "scheduler.json"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    log = open(tmp / "cluster.log", "w")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                               "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                               str(sched_file)], stdout=log, stderr=subprocess.STDOUT, env=env)]
    workers = []
    try:
        _wait(lambda: sched_file.is_file() and sched_file.stat().st_size > 0, 60, "the scheduler")
        addr = json.loads(sched_file.read_text())["address"]
        for _ in range(n_workers):
            w = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", addr,
                                  "--nthreads", "1", "--nworkers", "1", "--no-nanny",
                                  "--no-dashboard", "--host", "127.0.0.1"],
                                 stdout=log, stderr=subprocess.STDOUT, env=env)
            procs.append(w)
            workers.append(w)
        _wait(lambda: _identity_of(addr, 5).get("n_workers") == n_workers, 60, "the workers",
              step_s=0.2)
        yield addr, workers
    finally:  # workers first (a worker that lost its scheduler lingers, reconnecting)
        for p in workers:
            if p.poll() is None:
                p.kill()
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        log.close()


# ------------------------------------------------------------------ no cluster needed
def test_pareto_mask_matches_brute_force():
    from atsnn.sweep.pareto import pareto_mask
    rng = np.random.default_rng(0)
    for trial in range(50):
        n = int(rng.integers(1, 40))
        x = rng.integers(0, 6, n).astype(float)  # small ranges: many ties
        y = rng.integers(0, 6, n).astype(float)
        if trial % 5 == 0:
            x[rng.integers(0, n)] = np.nan
        got = pareto_mask(x, y, minimise_x=True, maximise_y=True)
        want = np.zeros(n, dtype=bool)
        for i in range(n):
            if np.isnan(x[i]) or np.isnan(y[i]):
                continue
            want[i] = not any((x[j] <= x[i] and y[j] >= y[i] and (x[j] < x[i] or y[j] > y[i]))
                              for j in range(n) if not (np.isnan(x[j]) or np.isnan(y[j])))
        assert (got == want).all(), (x, y, got, want)
    # the other senses: maximise x, minimise y
    assert pareto_mask([1, 2, 3], [3, 2, 1], minimise_x=False, maximise_y=False).tolist() == \
        [False, False, True]
    assert pareto_mask([1, 2, 3], [1, 2, 3], minimise_x=False, maximise_y=False).tolist() == \
        [True, True, True]


def _bad(tmp_path: Path, body: str, *argv: str):
    spec = tmp_path / "bad.toml"
    spec.write_text(body)
    out = tmp_path / "out"
    return main(["sweep", str(spec), "-o", str(out), *argv]), out


HEAD = 'name = "x"\n[[models]]\nsource = "digits_cnn_clip"\n'


@pytest.mark.parametrize("body, needle", [
    (HEAD + 'mode = "fast"\n', "models[0].mode"),
    (HEAD + "foo = 1\n", "unknown key 'models[0].foo'"),
    (HEAD + '[[hardware.variants]]\nset = { "memory.pe_bytes" = 512 }\n',
     "unknown key 'memory.pe_bytes'"),
    (HEAD + '[[hardware.variants]]\nset = { "array.rows" = 100 }\n',
     "key 'array.rows' = 100 is out of range [1, 64]"),
    (HEAD + '[hardware.grid]\n"array.rows" = 8\n', "hardware.grid.array.rows"),
    (HEAD + "[axes]\nT = [0]\n", "axes.T[0]"),
    (HEAD + "[axes]\nT = [4, 4]\n", "axes.T"),
    (HEAD + '[axes]\ndram = ["ddr9"]\n', "axes.dram[0]"),
    (HEAD + '[axes]\ncosts = ["nope"]\n', "axes.costs[0]"),
    (HEAD + '[[axes.policies]]\npolicy = "atsn"\ntheta = [0.3]\n', "axes.policies[0].theta"),
    (HEAD + '[[axes.policies]]\npolicy = "dtsnn"\ntheta = [1.5]\n', "axes.policies[0].theta[0]"),
    (HEAD + '[[axes.policies]]\npolicy = "dtsnn"\ntheta = 0.3\n', "axes.policies[0].theta"),
    (HEAD + 'rate = 0.1\n', "models[0].rate"),
    ('name = "x"\n[[models]]\nsource = "no_such_model"\n', "models[0].source"),
    ('name = "x"\n[[models]]\nsource = "missing.nir"\n', "models[0].source"),
    (HEAD + 'data = "missing.npz"\n', "models[0].data"),
    ('name = "x"\nmodels = []\n', "models"),
    ("name = x\n", "not valid TOML"),
])
def test_bad_spec_is_one_line_naming_the_key(tmp_path, capsys, body, needle):
    rc, out = _bad(tmp_path, body)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert needle in err and "bad.toml" in err, err
    assert not out.exists()  # nothing written


def test_usage_errors(tmp_path, capsys):
    rc, out = _bad(tmp_path, HEAD, "--scheduler", "tcp://127.0.0.1:9", "--workers", "2")
    assert rc == 2 and "--workers" in capsys.readouterr().err and not out.exists()
    rc, out = _bad(tmp_path, HEAD, "--workers", "0")
    assert rc == 2 and capsys.readouterr().err.count("\n") == 1


def test_unreachable_scheduler_fails_fast_and_writes_nothing(tmp_path, capsys):
    with socket.socket() as s:  # a port nothing listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        t0 = time.monotonic()
        rc, out = _bad(tmp_path, HEAD, "--scheduler", f"tcp://127.0.0.1:{port}",
                       "--connect-timeout", "2")
        elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and f"tcp://127.0.0.1:{port}" in err, err
    assert elapsed < 20
    assert not out.exists()
    rc, _ = _bad(tmp_path, HEAD, "--scheduler", "no-port-here")
    assert rc == 2 and "no-port-here" in capsys.readouterr().err


def test_foreign_output_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    spec = tmp_path / "s.toml"
    spec.write_text(HEAD)
    assert main(["sweep", str(spec), "-o", str(out)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert main(["sweep", str(spec), "-o", str(tmp_path)]) == 2  # holds the spec (an input)
    assert "holds an input" in capsys.readouterr().err


def test_a_store_in_use_is_refused(tmp_path, capsys):
    from atsnn.sweep.store import open_store
    spec = tmp_path / "s.toml"
    spec.write_text(HEAD)
    store, created = open_store(tmp_path / "out")
    assert created and (tmp_path / "out" / ".atsnn-output").is_file()
    with store.locked():
        assert main(["sweep", str(spec), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "in use by another 'atsnn sweep'" in err and err.count("\n") == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        [".atsnn-output", ".lock", "points", "store.json"]


def test_plan_shares_jobs_and_keys_follow_content(spec_file, tmp_path):
    from atsnn.sweep.plan import plan_from_file
    plan = plan_from_file(spec_file)
    assert len(plan.points) == TOTAL_POINTS
    assert len({p.key for p in plan.points}) == TOTAL_POINTS
    # cnn and cnn_analytic compile the same file for the same hardware: one job each
    assert len(plan.compiles) == 2 * 2  # (digits CNN, CubaLIF) x 2 arrays
    exact = [u for u in plan.units.values() if u.kind == "exact"]
    assert len(exact) == 2 * 2 * 2 + 2 * 2  # cnn: hw x dram x T; cubalif: hw x dram
    assert all(len(u.points) == 5 for u in exact)  # every policy point from one simulation
    assert len(plan.rates) == 2  # one rate measurement per analytic program
    # a label is not an input; the hardware and the model file's content are
    renamed = tmp_path / "renamed.toml"
    renamed.write_text(SPEC.replace('label = "8x8"', 'label = "small"')
                       .replace('name = "cubalif"', 'name = "broken"'))
    assert [p.key for p in plan_from_file(renamed).points] == [p.key for p in plan.points]
    other_hw = tmp_path / "hw.toml"
    other_hw.write_text(SPEC.replace('"array.cols" = 8', '"array.cols" = 4'))
    k2 = {p.key for p in plan_from_file(other_hw).points}
    assert len(k2 & {p.key for p in plan.points}) == 20 + 2 + 10  # the 16x16 half is unchanged
    copy = tmp_path / "model.nir"
    copy.write_bytes(CUBALIF.read_bytes() + b"\0")
    changed = tmp_path / "changed.toml"
    changed.write_text(SPEC.replace(str(CUBALIF), str(copy)))
    changed_keys = {p.key for p in plan_from_file(changed).points if p.axes["model"] == "cubalif"}
    assert not changed_keys & {p.key for p in plan.points}


def test_topology_is_built_once_for_all_its_compiles(tmp_path):
    from atsnn.sweep.plan import plan_from_file
    spec = tmp_path / "t.toml"
    spec.write_text('name = "t"\n[[models]]\nsource = "vgg16"\nmode = "analytic"\n'
                    'data = "synthetic"\n[[models]]\nsource = "vgg16"\nname = "vgg16_seed1"\n'
                    'seed = 1\nmode = "analytic"\ndata = "synthetic"\n[[hardware.variants]]\n'
                    '[[hardware.variants]]\nset = { "array.rows" = 8 }\n')
    plan = plan_from_file(spec)
    assert len(plan.topologies) == 2 and len(plan.compiles) == 4
    for tk, job in plan.topologies.items():
        assert [c.hardware.label for c in plan.compiles.values() if c.topology_key == tk] == \
            ["base", "array.rows=8"]
    assert {(j.name, j.seed) for j in plan.topologies.values()} == {("vgg16", 0), ("vgg16", 1)}


def test_hardware_grid_is_crossed_with_variants(tmp_path):
    from atsnn.sweep.plan import plan_from_file
    spec = tmp_path / "g.toml"
    spec.write_text(HEAD + '[[hardware.variants]]\n[[hardware.variants]]\nlabel = "small"\n'
                    'set = { array = { rows = 8, cols = 8 } }\n'
                    '[hardware.grid]\n"pe.data_memory_bytes" = [1024, 2048]\n')
    plan = plan_from_file(spec)
    got = [(p.axes["hardware"], p.axes["hw.array.rows"], p.axes["hw.pe.data_memory_bytes"])
           for p in plan.points]
    assert got == [("pe.data_memory_bytes=1024", 16, 1024),
                   ("pe.data_memory_bytes=2048", 16, 2048),
                   ("small,pe.data_memory_bytes=1024", 8, 1024),
                   ("small,pe.data_memory_bytes=2048", 8, 2048)]


# ------------------------------------------------------------------ end to end
def test_embedded_cluster_table(reference, capsys):
    out, result, _ = reference
    assert result.points == TOTAL_POINTS and result.computed == TOTAL_POINTS
    assert result.reused == 0 and result.not_stored == 0 and result.workers == 2
    assert "LocalCluster (2 worker" in result.cluster
    assert result.jobs == {"topologies": 0, "compiles": 4, "rates": 2, "units": 16}
    table = pd.read_csv(out / "points.csv")
    assert len(table) == TOTAL_POINTS and _points(out) == TOTAL_POINTS
    bad = table[table["model"] == "cubalif"]
    assert len(bad) == 20 and result.failed == 20 and table["error"].notna().sum() == 20
    # the failing model's error is the one line 'atsnn compile' prints, in every row
    assert main(["compile", str(CUBALIF), "-o", str(out.parent / "prog_bad")]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert set(bad["error"]) == {"compile: " + line[len("error: "):]}
    good = table[table["model"] != "cubalif"]
    assert good["error"].isna().all() and good["energy_per_inference_uj"].gt(0).all()
    parts = [c for c in table.columns if c.startswith("energy_") and c.endswith("_uj")
             and c != "energy_per_inference_uj"]
    assert len(parts) == 7
    np.testing.assert_allclose(good[parts].sum(axis=1), good["energy_per_inference_uj"],
                               rtol=1e-9)
    assert set(good["memory_fit"]) == {"on-chip"}
    for flag in ("pareto_energy_accuracy", "pareto_fps_energy"):
        assert table[flag].any() and not table.loc[table["error"].notna(), flag].any()
    # analytic points have no accuracy, so they are on no energy-accuracy front
    assert not table.loc[table["mode"] == "analytic", "pareto_energy_accuracy"].any()
    for f in ("pareto_energy_accuracy.png", "pareto_fps_energy.png"):
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "index.html").read_text()
    assert "pareto_fps_energy.png" in page and "CubaLIF" in page


def test_points_equal_simulate_and_estimate_one_by_one(reference, spec_file, tmp_path, capsys):
    """Every exact point against 'atsnn compile' + 'atsnn simulate' (summary.json and the energy
    breakdown), every analytic point against 'atsnn estimate --json'."""
    from atsnn.config import hardware_from_dict, hardware_to_toml
    from atsnn.costs import load_costs
    from atsnn.sweep.plan import plan_from_file
    out, _, _ = reference
    table = pd.read_csv(out / "points.csv").set_index("point_key")
    plan = plan_from_file(spec_file)
    progs = {}
    checked = 0
    for u in plan.units.values():
        job = plan.compiles[u.compile_key]
        if job.model.label == "cubalif":
            continue
        if u.compile_key not in progs:
            hw = tmp_path / f"hw_{len(progs)}.toml"
            hw.write_text(hardware_to_toml(hardware_from_dict(job.hardware.hw)))
            prog = tmp_path / f"prog_{len(progs)}"
            assert main(["compile", str(ROOT / "workloads" / "models" / "digits_cnn_clip.nir"),
                         "-o", str(prog), "--hw", str(hw)]) == 0
            progs[u.compile_key] = prog
        prog = progs[u.compile_key]
        if u.kind == "analytic":
            if u.cost.dram != load_costs().dram:  # 'atsnn estimate' has the default DRAM only
                continue
            capsys.readouterr()
            assert main(["estimate", str(prog), "--data", "digits", "--samples", "2",
                         "--measure-T", "8", "--T", str(u.T), "--json"]) == 0
            est = json.loads(capsys.readouterr().out)
            (p,) = u.points
            row = table.loc[p.key]
            for k in ("energy_per_inference_uj", "latency_per_inference_ms", "fps",
                      "cycles_per_inference"):
                assert row[k] == pytest.approx(est[k], rel=1e-12), k
            for c, v in est["energy_by_component_uj"].items():
                assert row[f"energy_{c}_uj"] == pytest.approx(v, rel=1e-12, abs=1e-18), c
            checked += 1
            continue
        by_pol = {}
        for p in u.points:
            by_pol.setdefault(p.policy, []).append(p)
        # two runs cover both parameter values of dtsnn and atsn (fixed is in both)
        for run_i in range(2):
            dt = by_pol["dtsnn"][run_i]
            at = by_pol["atsn"][run_i]
            run_dir = tmp_path / f"run_{u.key}_{run_i}"
            assert main(["simulate", str(prog), "--data", "digits", "--samples", str(SAMPLES),
                         "--T", str(u.T), "--dram", u.cost.dram, "--policy", "all",
                         "--theta", str(dt.params["theta"]),
                         "--cl-init", str(at.params["cl_init"]),
                         "--tau-cl", str(at.params["tau_cl"]), "-o", str(run_dir), "--quiet"]) == 0
            summary = json.loads((run_dir / "summary.json").read_text())
            breakdown = pd.read_csv(run_dir / "energy_breakdown.csv")
            for p in (by_pol["fixed"][0], dt, at):
                row = table.loc[p.key]
                ref = summary["policies"][p.policy]
                for k in ("accuracy", "avg_timestep", "energy_per_inference_uj",
                          "latency_per_inference_ms", "cycles_per_inference", "fps"):
                    assert row[k] == pytest.approx(ref[k], rel=1e-12), (p.policy, k)
                comp = breakdown[breakdown["policy"] == p.policy].groupby("component")["energy_pj"]
                for c, v in comp.sum().items():
                    assert row[f"energy_{c}_uj"] == pytest.approx(v * 1e-6, rel=1e-9), \
                        (p.policy, c)
                checked += 1
    assert checked == 8 * 2 * 3 + 2  # 8 simulations x 2 runs x 3 policies, 2 analytic points


def test_external_scheduler_gives_the_same_table(reference, spec_file, tmp_path, capsys):
    _, _, want = reference
    out = tmp_path / "out"
    with dask_cluster(tmp_path) as (addr, _):
        assert main(["sweep", str(spec_file), "-o", str(out), "--scheduler", addr, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["computed"] == TOTAL_POINTS and got["cluster"].startswith(f"Dask scheduler {addr}")
    assert (out / "points.csv").read_bytes() == want


def test_worker_killed_mid_sweep_changes_nothing(reference, spec_file, tmp_path):
    _, _, want = reference
    out = tmp_path / "out"
    with dask_cluster(tmp_path) as (addr, workers):
        sweep = subprocess.Popen([sys.executable, "-m", "atsnn.cli", "sweep", str(spec_file), "-o",
                                  str(out), "--scheduler", addr, "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: _points(out) > 0 or sweep.poll() is not None, STEP_TIMEOUT_S,
                  "the first point")
            workers[0].kill()
            at_kill = _points(out)
            workers[0].wait(timeout=10)
            stdout, stderr = sweep.communicate(timeout=STEP_TIMEOUT_S)
        finally:
            if sweep.poll() is None:
                sweep.kill()
                sweep.wait()
    assert workers[0].returncode == -signal.SIGKILL
    assert 0 < at_kill < TOTAL_POINTS, "the worker was not killed mid-sweep"
    assert sweep.returncode == 0, stderr
    got = json.loads(stdout)
    assert got["computed"] == TOTAL_POINTS and got["not_stored"] == 0
    assert (out / "points.csv").read_bytes() == want


def test_interrupted_sweep_resumes_with_only_the_missing_points(reference, spec_file, tmp_path):
    from atsnn.sweep.run import run_sweep
    _, _, want = reference
    out = tmp_path / "out"

    def interrupt_after_first_points(line):  # Ctrl-C as soon as some points are stored
        if _points(out) > 0:
            raise KeyboardInterrupt

    # in-process and deterministic: a subprocess sent SIGINT after its first point could finish
    # all 64 quick jobs before the signal arrived
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec_file, out, workers=2, log=interrupt_after_first_points)
    stored = _points(out)
    assert 0 < stored < TOTAL_POINTS, "the sweep was not interrupted mid-way"
    assert not (out / "points.csv").exists()
    lines = []
    result = run_sweep(spec_file, out, workers=2, log=lines.append)
    assert result.reused == stored and result.computed == TOTAL_POINTS - stored
    assert f"{stored} stored, {TOTAL_POINTS - stored} to compute" in lines[0]
    assert (out / "points.csv").read_bytes() == want
    again = run_sweep(spec_file, out, workers=2)  # complete: nothing computed, no cluster
    assert again.computed == 0 and again.reused == TOTAL_POINTS and again.tasks == 0
    assert (out / "points.csv").read_bytes() == want
    # a damaged point file counts as missing, and so does a point computed by other code:
    # their units run again, only those points are stored
    victim, old = sorted((out / "points").glob("*.json"))[:2]
    victim.write_text("{ not json")
    rec = json.loads(old.read_text())
    rec["identity"]["code"] = "0" * 64
    old.write_text(json.dumps(rec))
    fixed = run_sweep(spec_file, out, workers=2)
    assert fixed.computed == 2 and fixed.stale == 1 and fixed.reused == TOTAL_POINTS - 2
    assert json.loads(victim.read_text())["key"] == victim.stem
    assert json.loads(old.read_text())["identity"]["code"] != "0" * 64
    assert (out / "points.csv").read_bytes() == want
