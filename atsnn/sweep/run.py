"""Running a sweep on Dask: plan, skip what the store holds, compute the rest, write the table.

:func:`run_sweep` reads the spec, expands it (:mod:`atsnn.sweep.plan`), opens the store
(:mod:`atsnn.sweep.store`) and submits only the jobs of the missing points to a Dask cluster:
an embedded ``LocalCluster`` (``workers`` processes, one thread each) or an existing scheduler
(``tcp://HOST:PORT``). Every job is submitted with ``retries=2``; a worker lost mid-sweep makes
the scheduler run its jobs again elsewhere (results are deterministic, so the table does not
change). Each finished point is stored as soon as its unit returns, so an interrupted sweep
resumes where it stopped. At the end ``points.csv``, the Pareto plots and ``index.html`` are
rewritten from the store for every point of the spec.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from atsnn.errors import AtsnnError
from atsnn.sweep.plan import Plan, Point, plan_from_file

#: worker processes of the embedded cluster when ``workers`` is not given
DEFAULT_WORKERS = 2
#: Dask retries of a job that raised or whose worker died (besides the scheduler's own
#: ``allowed-failures`` for lost workers)
RETRIES = 2
#: seconds to reach a scheduler and to wait for its first worker
DEFAULT_CONNECT_TIMEOUT_S = 10.0


class SchedulerError(AtsnnError, RuntimeError):
    """The Dask scheduler cannot be reached, is not a scheduler, or has no workers."""


def figure_columns() -> list[str]:
    """The figure columns of ``points.csv``, in order (units in the names)."""
    from atsnn.hwsim.energy import COMPONENTS
    return (["accuracy", "avg_timestep", "energy_per_inference_uj"]
            + [f"energy_{c}_uj" for c in COMPONENTS]
            + ["latency_per_inference_ms", "cycles_per_inference", "fps",
               "energy_saved_vs_fixed_pct", "at_energy_share_of_pe", "pe_utilisation",
               "memory_fit", "samples_run", "note", "error"])


@dataclass
class SweepResult:
    """What one run did. ``computed`` counts the points this run computed and stored (failed
    ones included), ``reused`` those read from the store, ``not_stored`` the points whose job
    failed even after the retries (in the table with their error, computed again next run)."""

    out: str
    name: str
    points: int
    computed: int
    reused: int
    failed: int
    not_stored: int
    stale: int  # stored points of this spec computed by other code, computed again
    other_stored: int  # points in the store that this spec does not name
    jobs: dict[str, int]
    cluster: str
    workers: int
    wall_s: float
    cluster_start_s: float
    compute_wall_s: float
    task_compute_s: float  # sum over the jobs' compute time on the workers (Dask task stream)
    tasks: int
    table: pd.DataFrame | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("table")
        return d


async def _probe(address: str, timeout_s: float) -> dict:
    from distributed.core import rpc

    async def identity() -> dict:
        async with rpc(address, timeout=timeout_s) as r:
            return await r.identity()
    return await asyncio.wait_for(identity(), timeout_s + 1.0)  # rpc names its own timeout first


def probe_scheduler(address: str, timeout_s: float, *, need_workers: bool = True) -> dict:
    """The scheduler's identity, or :class:`SchedulerError` within about ``timeout_s`` seconds
    (bad address, nothing listening, a peer that does not speak the Dask protocol, and with
    ``need_workers`` no worker connected within that time)."""
    deadline = time.monotonic() + timeout_s
    ident = _identity_of(address, timeout_s)
    while need_workers and not ident.get("n_workers"):
        if time.monotonic() >= deadline:
            raise SchedulerError(f"the Dask scheduler at '{address}' has no workers (waited "
                                 f"{timeout_s:g} s); start some with 'dask worker {address}'")
        time.sleep(0.2)
        ident = _identity_of(address, timeout_s)
    return ident


def _identity_of(address: str, timeout_s: float) -> dict:
    try:
        ident = asyncio.run(_probe(address, timeout_s))
    except (Exception, asyncio.TimeoutError) as exc:  # noqa: BLE001 - any failure is "unreachable"
        why = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) and not str(exc):
            why = "no answer"
        if isinstance(exc, MemoryError):
            why = "the peer does not speak the Dask protocol"
        raise SchedulerError(f"cannot reach the Dask scheduler at '{address}' within "
                             f"{timeout_s:g} s: {why}") from None
    if not isinstance(ident, dict) or ident.get("type") != "Scheduler":
        raise SchedulerError(f"'{address}' answers but is not a Dask scheduler "
                             f"({ident.get('type') if isinstance(ident, dict) else ident!r})")
    return ident


@contextmanager
def dask_client(scheduler: str | None, workers: int, timeout_s: float) -> Iterator[tuple]:
    """(client, description, worker count): an embedded LocalCluster of ``workers`` processes
    (one thread each, Numba on one thread) or a connection to ``scheduler``; closed on exit."""
    import logging
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise AtsnnError("atsnn sweep needs dask.distributed: pip install 'dask[distributed]'") \
            from None
    cluster = None
    if scheduler is None:
        # no dashboard; the scheduler's HTTP endpoint on a free local port (never 8787's clash)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None,
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                               silence_logs=logging.ERROR, env={"NUMBA_NUM_THREADS": "1"})
        client = Client(cluster, set_as_default=False)
        desc = f"embedded LocalCluster ({workers} worker processes x 1 thread)"
        n = workers
    else:
        probe_scheduler(scheduler, timeout_s)
        try:
            client = Client(scheduler, timeout=timeout_s, set_as_default=False)
        except Exception as exc:  # noqa: BLE001
            raise SchedulerError(f"cannot connect to the Dask scheduler at '{scheduler}': "
                                 f"{' '.join(str(exc).split())}") from None
        try:
            client.wait_for_workers(1, timeout=timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            client.close()
            raise SchedulerError(f"the Dask scheduler at '{scheduler}' has no workers (waited "
                                 f"{timeout_s:g} s); start some with 'dask worker {scheduler}'") \
                from None
        n = len(client.scheduler_info().get("workers", {}))
        desc = f"Dask scheduler {scheduler} ({n} workers)"
    try:
        yield client, desc, n
    finally:
        try:
            client.close()
        finally:
            if cluster is not None:
                cluster.close()


def _identity(plan: Plan, p: Point) -> dict[str, Any]:
    """The inputs a point's key hashes, for the record in its point file."""
    from atsnn import __version__
    u = plan.units[p.unit_key]
    c = plan.compiles[u.compile_key]
    return {"atsnn": __version__, "code": c.code, "model": c.model.identity(), "mode": u.kind,
            "hardware": c.hardware.hw, "costs": {"name": u.cost.name, **u.cost.identity()},
            "data": u.data.identity(), "T": u.T, "policy": p.policy, "params": p.params}


def _describe(plan: Plan, u) -> str:
    c = plan.compiles[u.compile_key]
    return f"{c.model.label} {c.hardware.label} T={u.T} {u.cost.name}/{u.cost.dram}"


def build_table(plan: Plan, figures: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per point of ``plan`` (axes, then figures, then the key); Pareto flags added."""
    from atsnn.sweep.pareto import add_front_flags
    cols = figure_columns()
    rows = []
    for p in plan.points:
        f = figures.get(p.key, {"error": "not computed"})
        rows.append({**p.axes, **{c: f.get(c) for c in cols}, "point_key": p.key})
    table = pd.DataFrame(rows)
    for col in table.columns:  # integer columns with gaps stay integers (nullable), not floats
        vals = [r[col] for r in rows if r.get(col) is not None]
        if vals and all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            table[col] = pd.array([r.get(col) for r in rows], dtype="Int64")
    return add_front_flags(table)


def _task_compute_seconds(stream: list[dict]) -> tuple[float, int]:
    total, n = 0.0, 0
    for rec in stream:
        for ss in rec.get("startstops", ()):
            if ss.get("action") == "compute":
                total += float(ss["stop"]) - float(ss["start"])
        n += 1
    return total, n


def run_sweep(spec_path: str | Path, out: str | Path, *, scheduler: str | None = None,
              workers: int | None = None, force: bool = False,
              connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
              log: Callable[[str], None] | None = None) -> SweepResult:
    """Run the sweep of ``spec_path`` into the store ``out`` and return what was done.

    Raises :class:`atsnn.sweep.spec.SpecError` (bad spec), :class:`atsnn.files.OutputPathError`
    (``out`` not usable) or :class:`SchedulerError` before computing anything. ``log`` receives
    progress lines (None: silent). ``workers`` applies to the embedded cluster only; its
    worker processes are spawned, so a script calling this needs the
    ``if __name__ == "__main__":`` guard."""
    t_start = time.perf_counter()
    say = log or (lambda _line: None)
    plan = plan_from_file(spec_path)
    from atsnn.files import check_output_path
    from atsnn.sweep.store import KIND, open_store
    check_output_path(out, kind=KIND, force=force, inputs=plan.input_paths)
    if scheduler is not None:  # before anything is written: an unreachable cluster changes nothing
        probe_scheduler(scheduler, connect_timeout_s)
    store, created = open_store(out, force=force, inputs=plan.input_paths)
    n_workers = workers or DEFAULT_WORKERS
    with store.locked():
        stored, bad = store.load_points()
        for name in bad:
            say(f"note: point file points/{name} is unreadable; its point is computed again")
        spec_keys = {p.key for p in plan.points}
        stale = {k for k in spec_keys & set(stored)
                 if stored[k].get("identity", {}).get("code") != plan.code}
        if stale:
            say(f"note: {len(stale)} stored points were computed by other atsnn code (the code "
                "fingerprint differs); they are computed again")
        figures: dict[str, dict[str, Any]] = {k: r["figures"] for k, r in stored.items()
                                              if k not in stale}
        missing = {p.key for p in plan.points if p.key not in figures}
        reused = len(spec_keys) - len(missing)
        sub = plan.subset(missing)
        jobs = {"topologies": len(sub.topologies), "compiles": len(sub.compiles),
                "rates": len(sub.rates), "units": len(sub.units)}
        say(f"sweep {plan.name}: {len(plan.points)} points, {reused} stored, {len(missing)} to "
            f"compute ({jobs['topologies']} topology builds, {jobs['compiles']} compiles, "
            f"{jobs['rates']} rate runs, {jobs['units']} simulations/estimates)"
            f"{'; new store ' + str(out) if created else ''}")
        computed = not_stored = 0
        cluster_desc = "none (nothing to compute)"
        cluster_start_s = compute_wall_s = task_s = 0.0
        tasks = 0
        if sub.units:
            t0 = time.perf_counter()
            with dask_client(scheduler, n_workers, connect_timeout_s) as (client, cluster_desc,
                                                                          n_workers):
                cluster_start_s = time.perf_counter() - t0
                say(f"cluster: {cluster_desc}")
                t1 = time.perf_counter()
                computed, not_stored, stream = _compute(client, plan, sub, store, figures, say,
                                                        total=len(plan.points), done=reused)
                compute_wall_s = time.perf_counter() - t1
                task_s, tasks = _task_compute_seconds(stream)
        table = build_table(plan, figures)
        failed = int(table["error"].notna().sum())
        result = SweepResult(out=str(out), name=plan.name, points=len(plan.points),
                             computed=computed, reused=reused, failed=failed,
                             not_stored=not_stored, stale=len(stale),
                             other_stored=len(set(stored) - spec_keys), jobs=jobs,
                             cluster=cluster_desc, workers=n_workers,
                             wall_s=0.0, cluster_start_s=cluster_start_s,
                             compute_wall_s=compute_wall_s, task_compute_s=task_s, tasks=tasks,
                             table=table)
        _write_outputs(store, plan, table, result, Path(spec_path))
        result.wall_s = time.perf_counter() - t_start
        store.write_text("sweep.json", json.dumps(result.to_json(), indent=1) + "\n")
    return result


def _compute(client, plan: Plan, sub: Plan, store, figures: dict, say, *, total: int,
             done: int) -> tuple[int, int, list[dict]]:
    """Submit ``sub``'s jobs, store every point as its unit returns; (computed, not stored,
    task stream records)."""
    from distributed import as_completed, get_task_stream

    from atsnn.sweep import tasks as T
    computed = not_stored = 0
    with get_task_stream(client) as stream:
        topo = {tk: client.submit(T.topology_task, job.name, job.seed, key=f"topology-{tk}",
                                  retries=RETRIES) for tk, job in sub.topologies.items()}
        comp = {ck: client.submit(T.compile_task, job.model, job.hardware.hw, job.code,
                                  topo[job.topology_key] if job.topology_key else None,
                                  key=f"compile-{ck}", retries=RETRIES)
                for ck, job in sub.compiles.items()}
        rates = {rk: client.submit(T.rates_task, comp[job.compile_key], job.model,
                                   key=f"rates-{rk}", retries=RETRIES)
                 for rk, job in sub.rates.items()}
        units = {}
        for uk, u in sub.units.items():
            if u.kind == "exact":
                f = client.submit(T.exact_unit_task, comp[u.compile_key], u.data, u.T, u.cost,
                                  u.points, key=f"unit-{uk}", retries=RETRIES)
            else:
                f = client.submit(T.analytic_unit_task, comp[u.compile_key], rates[u.rates_key],
                                  u.T, u.cost, u.points, key=f"unit-{uk}", retries=RETRIES)
            units[f.key] = (f, u)
        del topo, comp, rates  # the units hold what they need; freed as units finish
        futures = [f for f, _ in units.values()]
        for fut in as_completed(futures, loop=client.loop):
            _, u = units.pop(fut.key)
            try:
                outcome = fut.result()
            except Exception as exc:  # noqa: BLE001 - the job failed after its retries
                msg = f"job failed after {RETRIES} retries: {type(exc).__name__}: " \
                      f"{' '.join(str(exc).split())}"
                for p in u.points:
                    figures[p.key] = {"error": msg}
                not_stored += len(u.points)
                done += len(u.points)
                say(f"[{done:>{len(str(total))}}/{total}] {_describe(plan, u)}: {msg}")
                continue
            finally:
                fut.release()
            for p in u.points:
                fig = outcome.figures.get(p.key, {"error": "internal: no result for the point"})
                store.put_point(p.key, _identity(plan, p), fig)
                figures[p.key] = fig
                computed += 1
            done += len(u.points)
            errs = sum(1 for p in u.points if figures[p.key].get("error"))
            say(f"[{done:>{len(str(total))}}/{total}] {_describe(plan, u)}: {len(u.points)} "
                f"points{f' ({errs} failed)' if errs else ''} in {outcome.seconds:.2f} s on "
                f"{outcome.worker}")
    return computed, not_stored, list(stream.data)


def _write_outputs(store, plan: Plan, table: pd.DataFrame, result: SweepResult,
                   spec_path: Path) -> None:
    from atsnn.sweep.pareto import write_report
    store.write_text("points.csv", table.to_csv(index=False))
    store.write_text("spec.toml", spec_path.read_text(encoding="utf-8"))
    stats = dict(points=result.points, failed=result.failed, computed=result.computed,
                 reused=result.reused)
    write_report(store, table, name=plan.name, description=plan.description, stats=stats)


def print_result(result: SweepResult, file=sys.stdout) -> None:
    """The closing lines of ``atsnn sweep``."""
    print(f"sweep {result.name}: {result.points} points: computed {result.computed}, reused "
          f"{result.reused}, failed {result.failed}"
          + (f" ({result.not_stored} not stored, retried next run)" if result.not_stored else "")
          + f"; {result.wall_s:.1f} s on {result.cluster}", file=file)
    print(f"table {Path(result.out) / 'points.csv'}, report {Path(result.out) / 'index.html'}",
          file=file)
