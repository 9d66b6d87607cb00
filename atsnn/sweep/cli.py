"""``atsnn sweep SPEC.toml -o OUT [--scheduler ADDRESS] [--workers N] [--force]``."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from atsnn import cli_types as ct
    p = sub.add_parser("sweep", help="design-space sweep on Dask: models x hardware x cost "
                                     "tables x T x exit policies; resumable point store, table, "
                                     "Pareto fronts")
    p.add_argument("spec", help="sweep spec (TOML; see README 'Design-space exploration')")
    p.add_argument("-o", "--out", required=True,
                   help="sweep store directory; a re-run adds only the missing points")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="tcp://HOST:PORT of a running Dask scheduler (default: an embedded "
                        "LocalCluster)")
    p.add_argument("--workers", type=ct.int_range(1, 256), default=None,
                   help="worker processes of the embedded cluster (default 2, one thread each)")
    p.add_argument("--connect-timeout", type=ct.positive, default=None, metavar="SECONDS",
                   help="seconds to reach --scheduler and wait for a worker (default 10)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing directory that atsnn did not write (never an input)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print what the run did as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from atsnn.errors import AtsnnError
    from atsnn.sweep.run import DEFAULT_CONNECT_TIMEOUT_S, print_result, run_sweep

    if args.scheduler is not None and args.workers is not None:
        raise AtsnnError("--workers sets the size of the embedded cluster; a --scheduler's "
                         "cluster has its own workers (drop one of the two)")
    if args.connect_timeout is not None and args.scheduler is None:
        raise AtsnnError("--connect-timeout applies to --scheduler only")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = run_sweep(args.spec, args.out, scheduler=args.scheduler, workers=args.workers,
                       force=args.force,
                       connect_timeout_s=args.connect_timeout or DEFAULT_CONNECT_TIMEOUT_S,
                       log=None if args.quiet else log)
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        print_result(result)
    return 0
