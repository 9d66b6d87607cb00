"""Mutation testing of one module with mutmut 3 (README, "Mutation testing").

    .venv/bin/python benchmarks/mutation.py MODULE [TEST_FILE ...] [--max-children 1] [--fresh]
                                            [--survivors] [--report] [--diffs] [--json FILE]
                                            [--rev HEAD [--worktree tests/NEW_TEST.py ...]]

MODULE is a path such as ``hwsim/policies.py``; the test files (default: the
``pytest_add_cli_args_test_selection`` of ``[tool.mutmut]`` in pyproject.toml) are the
fast, relevant tests whose failures kill mutants. The run happens in its own work
directory, ``build/mutation/<module>/``: the packages, tests/ and pyproject.toml are
copied there (so edits made in the repository during a run change nothing, and every
module keeps its own results), ``only_mutate`` is narrowed to MODULE and the test
selection to the given files, then ``mutmut run`` runs there with ``--max-children``
workers (default 1: the machine is shared). Afterwards it prints killed / survived /
timeout / no tests / total, the score ``(killed + timeout) / total`` and every
surviving mutant with its diff (``mutmut show``).

A second call reuses the work directory: changed files (tests added, the module
edited) are copied in again and mutmut re-tests only what they can affect; with
``--survivors`` it re-tests the mutants that survived last time (mutmut keeps the
verdicts of unchanged functions and does not re-run them by itself), which is the
loop for killing survivors with new tests. ``--fresh`` starts over, ``--report``
only prints the last results.
"""

from __future__ import annotations

import argparse
import filecmp
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from datetime import date
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).parent / "mutmut"


def _config() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _sync_tree(src: Path, dst: Path, mutants: Path, rel: Path, module: str) -> int:
    """Copy the files of ``src`` that are new or changed into ``dst`` and return their count.

    mutmut copies a non-Python file into ``mutants`` only when its copy is missing, so a stale copy
    is removed. The module under test is copied with a new mtime, which makes mutmut mutate it
    again (it compares mtimes) and re-test the functions whose text changed."""
    changed = 0
    for path in sorted(src.rglob("*")):
        if path.is_dir() or any(p in ("__pycache__", ".hypothesis", ".pytest_cache") for p in path.parts):
            continue
        if path.suffix in (".pyc", ".nbi", ".nbc"):
            continue
        inner = path.relative_to(src)
        target = dst / inner
        if target.exists() and filecmp.cmp(path, target, shallow=False):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if (rel / inner).as_posix() == module:
            shutil.copy(path, target)
        else:
            shutil.copy2(path, target)
            (mutants / rel / inner).unlink(missing_ok=True)
        changed += 1
    return changed


def _snapshot(rev: str, names: list[str], worktree: list[str]) -> Path:
    """The tree of ``names`` at git revision ``rev`` in a scratch directory, with the ``worktree``
    paths taken from the working tree instead (a new test file not committed yet)."""
    snap = ROOT / "build" / "mutation" / f".snapshot-{os.getpid()}"
    if snap.exists():
        shutil.rmtree(snap)
    snap.mkdir(parents=True)
    names = [n for n in names if subprocess.run(["git", "cat-file", "-e", f"{rev}:{n}"], cwd=ROOT,
                                                capture_output=True).returncode == 0]
    archive = subprocess.run(["git", "archive", rev, *names], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(snap)], input=archive, check=True)
    for w in worktree:
        (snap / w).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / w, snap / w)
    return snap


def prepare(workdir: Path, module: str, tests: list[str], fresh: bool, rev: str | None = None,
            worktree: list[str] = ()) -> None:
    cfg = _config()
    mm = dict(cfg["tool"]["mutmut"])
    if fresh and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mutants = workdir / "mutants"
    changed = 0
    names = list(mm["source_paths"]) + ["tests"] + [p for p in mm.get("also_copy", []) if "/" not in p]
    base = _snapshot(rev, names, list(worktree)) if rev else ROOT
    for name in names:
        src = base / name
        if src.is_dir():
            changed += _sync_tree(src, workdir / name, mutants, Path(name), module)
    if changed and not fresh:
        print(f"copied {changed} new or changed file(s) into {workdir.relative_to(ROOT)}")
    mm["only_mutate"] = [module]
    mm["pytest_add_cli_args_test_selection"] = list(tests)
    # the work directory is a snapshot, not a checkout: mutmut's git-based change detection
    # would compare the repository instead
    mm["use_git_change_detection"] = False
    cfg["tool"] = {"mutmut": mm, "pytest": cfg["tool"].get("pytest", {})}
    with open(workdir / "pyproject.toml", "wb") as f:
        tomli_w.dump(cfg, f)


#: a pytest plugin loaded in every mutmut run (``-p _mutmut_fresh_caches``): mutmut forks each mutant's worker
#: from a process that has already run the tests, so module-level caches (the layer tables and their
#: accounting matrices, transposed weights) would hand the child results computed by the original code
#: and hide mutants behind them; they are emptied before every test, in the stats run too (so the map of
#: which test reaches which function is complete)
PLUGIN = '''"""Written by benchmarks/mutation.py: empty hwsim's module-level caches before every test."""
import sys


def pytest_runtest_setup(item):
    t = sys.modules.get("atsnn.hwsim.tables")
    if t is not None:
        t._TABLE_CACHE.clear()
    o = sys.modules.get("atsnn.hwsim.ops")
    if o is not None:
        o._WT_CACHE.clear()
'''


def results(workdir: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"], cwd=workdir, capture_output=True, text=True, check=True
    ).stdout
    res = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            res[name] = status
    return res


_SHOW = """
import json, sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
out = {}
for name in json.loads(sys.stdin.read()):
    try:
        out[name] = get_diff_for_mutant(name, path=find_mutant(name).path)
    except Exception as e:  # noqa: BLE001 - report the mutant without its diff
        out[name] = f"(no diff: {type(e).__name__}: {e})"
print(json.dumps(out))
"""


def show(workdir: Path, names: list[str]) -> dict[str, str]:
    """``mutmut show`` of each mutant (its diff), in one process."""
    if not names:
        return {}
    out = subprocess.run([sys.executable, "-c", _SHOW], cwd=workdir, input=json.dumps(names),
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _diff_lines(diff: str) -> list[str]:
    return [
        ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("module", help="module to mutate, e.g. hwsim/policies.py")
    ap.add_argument("tests", nargs="*", help="test files (default: the [tool.mutmut] test selection)")
    ap.add_argument("--max-children", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=None, help="default build/mutation/<module>")
    ap.add_argument("--fresh", action="store_true", help="discard the previous results of this module")
    ap.add_argument("--survivors", action="store_true", help="re-test only the mutants that survived last time")
    ap.add_argument("--only", action="append", default=[], metavar="GLOB",
                    help="run (and count) only the mutants whose name matches (fnmatch; repeatable); with "
                         "--survivors: re-test only the matching survivors")
    ap.add_argument("--report", action="store_true", help="print the last results without running")
    ap.add_argument("--diffs", action="store_true", help="print the full diff of every survivor")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary as JSON")
    ap.add_argument("--rev", default=None,
                    help="take the packages and tests/ from this git revision (e.g. HEAD) instead of the "
                         "working tree, so that others' uncommitted edits do not enter the run")
    ap.add_argument("--deselect", action="append", default=[], metavar="NODEID",
                    help="leave out a test that fails without any mutant (passed in PYTEST_ADDOPTS, so that "
                         "mutmut's cached verdicts stay valid); repeatable")
    ap.add_argument("--worktree", action="append", default=[], metavar="PATH",
                    help="with --rev: take this file from the working tree all the same (repeatable)")
    args = ap.parse_args(argv)

    module = Path(args.module).as_posix()
    if not (ROOT / module).is_file() or not module.endswith(".py"):
        ap.error(f"{module}: no such module under {ROOT}")
    if module == "hwsim/kernels.py":
        ap.error("hwsim/kernels.py holds numba kernels and is not mutated (do_not_mutate)")
    tests = args.tests or _config()["tool"]["mutmut"]["pytest_add_cli_args_test_selection"]
    for t in tests:
        if not (ROOT / t.split("::")[0]).exists():
            ap.error(f"{t}: no such test file")
    workdir = args.workdir or ROOT / "build" / "mutation" / module.removesuffix(".py").replace("/", "__")
    workdir = workdir.resolve()
    if args.rev:
        args.rev = subprocess.run(["git", "rev-parse", "--verify", args.rev + "^{commit}"], cwd=ROOT,
                                  capture_output=True, text=True, check=True).stdout.strip()

    if not args.report:
        if args.survivors and not (workdir / "mutants").exists():
            ap.error("--survivors needs a previous run of this module")
        prepare(workdir, module, tests, args.fresh, args.rev, args.worktree)
        env = dict(os.environ)
        env.pop("PYTEST_ADDOPTS", None)
        (workdir / "mutants").mkdir(exist_ok=True)
        (workdir / "mutants" / "_mutmut_fresh_caches.py").write_text(PLUGIN)
        env["PYTEST_ADDOPTS"] = " ".join(["-p _mutmut_fresh_caches"] + [f"--deselect={d}" for d in args.deselect])
        # mutmut forks a worker per mutant from a process that has already run the tests; GNU
        # OpenMP (numba's default threading layer for the prange kernels of hwsim/ops.py) kills
        # a forked child with SIGTERM, numba's workqueue layer is fork safe
        env["NUMBA_THREADING_LAYER"] = "workqueue"
        # (tests that start a fresh interpreter, the kernels without JIT, run in mutants/ and import the
        # mutated copy from there; mutmut hands them the mutant under test in MUTANT_UNDER_TEST)
        log = workdir / "mutmut-run.log"
        print(f"mutmut run on {module} ({len(tests)} test files), log in {log.relative_to(ROOT)}", flush=True)
        # a plain run tests every mutant without a verdict (all of them the first time; after an edit,
        # those of the changed functions); --survivors then re-tests the survivors by name, since
        # mutmut keeps the verdicts of unchanged functions even when tests were added
        rc = 0
        passes = [] if (args.survivors and args.only) else [list(args.only)]  # --only alone: just those
        if args.survivors:
            passes.append(None)
        with open(log, "w") as f:
            for names in passes:
                if names is None:
                    names = [n for n, st in results(workdir).items() if st in ("survived", "suspicious", "no tests", "timeout")]
                    if args.only:
                        names = [n for n in names if any(fnmatch.fnmatch(n, g) for g in args.only)]
                    if not names:
                        break
                    print(f"re-testing {len(names)} survivors", flush=True)
                cmd = [str(MUTMUT), "run", "--max-children", str(args.max_children), *names]
                rc = subprocess.run(cmd, cwd=workdir, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
                if rc != 0:
                    break
        if rc != 0:
            print(log.read_text()[-3000:])
            print(f"mutmut run exited with {rc}")
            return rc

    if args.report and (workdir / "summary.json").exists():  # the test files and revision of the last run
        last = json.loads((workdir / "summary.json").read_text())
        tests, args.rev, args.deselect = last["tests"], last.get("rev"), last.get("deselected", [])
    # the mutants counted: all of the module, or those of a run limited with --only (its "scope", kept by
    # later --survivors and --report calls)
    last = json.loads((workdir / "summary.json").read_text()) if (workdir / "summary.json").exists() else {}
    scope = list(args.only) if (args.only and not args.survivors and not args.report) else last.get("scope", [])
    res = {n: s for n, s in results(workdir).items() if not scope or any(fnmatch.fnmatch(n, g) for g in scope)}
    counts = Counter(res.values())
    total = len(res)
    killed = counts["killed"] + counts["caught by type check"]
    timeout = counts["timeout"]
    score = 100.0 * (killed + timeout) / total if total else 0.0
    survivors = sorted(n for n, s in res.items() if s not in ("killed", "timeout", "caught by type check"))
    print()
    print(f"module   {module}")
    print(f"tests    {' '.join(tests)}")
    print(
        f"killed {killed}  survived {counts['survived']}  timeout {timeout}  no tests {counts['no tests']}"
        f"  other {total - killed - timeout - counts['survived'] - counts['no tests']}  total {total}"
    )
    print(f"score    {killed + timeout}/{total} = {score:.1f} %")
    summary = {
        "module": module,
        "rev": args.rev,
        "date": date.today().isoformat(),
        "tests": list(tests),
        "deselected": list(args.deselect),
        "scope": scope,
        "killed": killed,
        "survived": counts["survived"],
        "timeout": timeout,
        "no_tests": counts["no tests"],
        "total": total,
        "score": round(score, 2),
        "survivors": {},
    }
    if survivors:
        print(f"\n{len(survivors)} not killed:")
    diffs = show(workdir, survivors)
    for name in survivors:
        diff = diffs[name]
        lines = _diff_lines(diff)
        summary["survivors"][name] = {"status": res[name], "diff": lines}
        if args.diffs:
            print(diff)
        else:
            print(f"  {name} [{res[name]}]")
            for ln in lines:
                print(f"      {ln.strip()[:150]}")
    with open(workdir / "summary.json", "w") as f:
        json.dump(summary, f, indent=1)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
