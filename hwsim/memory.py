"""Memory a simulation needs, estimated before it allocates anything.

A run keeps per-sample, per-timestep records of every layer (docs/results.md) and the output
membranes; their size grows as samples x T x (layers x fields + classes). :func:`check_run_memory`
refuses a run whose records would not fit in the memory the process can use, with the figure and
what would bring it down, instead of failing with a MemoryError after minutes.
"""

from __future__ import annotations

import os
import resource

from atsnn.errors import SimulationInputError

#: the policies' evaluation and the result tables take about as much again as the records
EVALUATION_FACTOR = 2


def available_memory_bytes() -> int:
    """Bytes this process may still allocate: the smaller of the system's available memory
    (``MemAvailable``) and what the address-space limit (``ulimit -v``) leaves."""
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            avail = 1 << 62
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = 0
        try:
            with open("/proc/self/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmSize:"):
                        used = int(line.split()[1]) * 1024
        except OSError:
            pass
        avail = min(avail, max(0, soft - used))
    return avail


def record_bytes(samples: int, T: int, layers: int, fields_per_layer: int, classes: int) -> int:
    """Bytes of a run's records: int64/float64 ``(samples, T)`` per layer field, plus the
    ``(samples, T, classes)`` output membranes."""
    return 8 * samples * T * (layers * fields_per_layer + classes)


def check_run_memory(samples: int, T: int, layers: int, fields_per_layer: int, classes: int,
                     *, what: str) -> int:
    """The estimated bytes of a run, or a :class:`SimulationInputError` when they exceed
    :func:`available_memory_bytes`. ``what`` names the run in the message."""
    need = EVALUATION_FACTOR * record_bytes(samples, T, layers, fields_per_layer, classes)
    have = available_memory_bytes()
    if need > have:
        per_sample = need / max(samples, 1)
        fit = int(have // per_sample) if per_sample else 0
        raise SimulationInputError(
            f"{what}: {samples} samples x T={T} need about {_gib(need)} of records, "
            f"{_gib(have)} available; use --samples {max(fit, 1)} or fewer, or a smaller --T")
    return need


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= (1 << 28) else f"{n / (1 << 20):.0f} MiB"
