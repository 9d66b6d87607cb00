"""Speed-up of ``atsnn sweep`` with 2 Dask workers over 1, and the scheduler's overhead per point.

Runs the example spec (``workloads/sweeps/digits_vgg16.toml``) from an empty store on an
embedded LocalCluster with 1 and with 2 worker processes (one thread each), alternating,
``--repeats`` times each after one untimed warm-up run (Numba's on-disk cache, imports).
Reports for each worker count the median and the spread (min-max) of

- the whole run (spec, plan, cluster start, computation, table and report), and
- the computation phase alone (first submit to last stored point),

the speed-ups of the medians, and the scheduler overhead: on 1 worker, (computation wall time -
the jobs' own compute time from Dask's task stream) / points and / jobs, plus the round trip of
``--noop-tasks`` empty tasks submitted and collected the way the sweep does.

    python benchmarks/bench_sweep.py [--spec FILE] [--repeats 3] [--noop-tasks 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "workloads" / "sweeps" / "digits_vgg16.toml"


def _noop(i: int) -> int:
    return i


def noop_round_trip_s(n: int) -> float:
    """Seconds per empty task, submitted one by one and collected with as_completed on a
    1-worker embedded cluster (the sweep's pattern), after the cluster has started."""
    from distributed import as_completed

    from atsnn.sweep.run import dask_client
    with dask_client(None, 1, 10.0) as (client, _, _):
        client.submit(_noop, -1, key="warm").result()
        t0 = time.perf_counter()
        futs = [client.submit(_noop, i, key=f"noop-{i}", retries=2) for i in range(n)]
        for f in as_completed(futs, loop=client.loop):
            f.result()
        return (time.perf_counter() - t0) / n


def one_run(spec: Path, workers: int, attempts: int = 3) -> dict:
    """One sweep from an empty store. A run whose jobs failed (e.g. the source files changed
    under it, so the workers' code fingerprint differs) is reported and run again."""
    from atsnn.sweep.run import run_sweep
    for attempt in range(attempts):
        with tempfile.TemporaryDirectory(prefix="bench-sweep-") as d:
            t0 = time.perf_counter()
            r = run_sweep(spec, Path(d) / "out", workers=workers)
            wall = time.perf_counter() - t0
            errors = set(r.table.loc[r.table["error"].notna(), "error"]) if r.not_stored else set()
        if r.computed == r.points and r.not_stored == 0:
            break
        print(f"  (run discarded, {r.not_stored} points not computed: {sorted(errors)[:1]})")
    else:
        raise SystemExit(f"error: {attempts} runs in a row did not compute every point")
    return dict(wall_s=wall, compute_s=r.compute_wall_s, task_s=r.task_compute_s,
                tasks=r.tasks, points=r.points, failed=r.failed, jobs=r.jobs)


def _fmt(xs: list[float]) -> str:
    return (f"median {statistics.median(xs):7.2f} s  (min {min(xs):.2f}, max {max(xs):.2f}, "
            f"n={len(xs)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, default=SPEC)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--noop-tasks", type=int, default=200)
    args = ap.parse_args()
    print(f"spec {args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec}; "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"Python {platform.python_version()}")
    import dask
    print(f"dask {dask.__version__}; embedded LocalCluster, processes, 1 thread per worker, "
          "NUMBA_NUM_THREADS=1; every run from an empty store")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          "(1, 5, 15 min; other processes on the machine share its CPUs)")
    warm = one_run(args.spec, 2)
    print(f"warm-up (2 workers, untimed): {warm['wall_s']:.1f} s; {warm['points']} points "
          f"({warm['failed']} failed), jobs {warm['jobs']}, {warm['tasks']} Dask tasks")
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for i in range(args.repeats):
        for w in (1, 2) if i % 2 == 0 else (2, 1):
            r = one_run(args.spec, w)
            runs[w].append(r)
            print(f"  run {i + 1}, {w} worker{'s' if w > 1 else ''}: {r['wall_s']:6.2f} s "
                  f"(computation {r['compute_s']:.2f} s, jobs' own compute {r['task_s']:.2f} s; "
                  f"load average {os.getloadavg()[0]:.1f})")
    for w in (1, 2):
        label = f"{w} worker{'s' if w > 1 else ' '}"
        print(f"{label}  whole run:   {_fmt([r['wall_s'] for r in runs[w]])}")
        print(f"           computation: {_fmt([r['compute_s'] for r in runs[w]])}")
    med = {w: statistics.median(r["wall_s"] for r in runs[w]) for w in (1, 2)}
    medc = {w: statistics.median(r["compute_s"] for r in runs[w]) for w in (1, 2)}
    spread = [a["wall_s"] / b["wall_s"] for a, b in zip(runs[1], runs[2])]
    print(f"speed-up 2 workers over 1: whole run {med[1] / med[2]:.2f}x, computation "
          f"{medc[1] / medc[2]:.2f}x (paired runs: {min(spread):.2f}-{max(spread):.2f}x)")
    over = [(r["compute_s"] - r["task_s"]) for r in runs[1]]
    pts, tasks = runs[1][0]["points"], runs[1][0]["tasks"]
    print(f"scheduler overhead on 1 worker (computation - jobs' compute): median "
          f"{1e3 * statistics.median(over) / pts:.1f} ms per point, "
          f"{1e3 * statistics.median(over) / tasks:.1f} ms per job ({pts} points, {tasks} jobs)")
    if args.noop_tasks > 0:
        print(f"empty-task round trip ({args.noop_tasks} tasks, 1 worker): "
              f"{1e3 * noop_round_trip_s(args.noop_tasks):.2f} ms per task")


if __name__ == "__main__":
    main()
