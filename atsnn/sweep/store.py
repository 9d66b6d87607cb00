"""The resumable point store: an atsnn-owned output directory of kind ``sweep``.

Layout of ``OUT``::

    .atsnn-output          marker {"kind": "sweep", ...} (atsnn.files rules)
    store.json             {"format": STORE_FORMAT}
    points/<key>.json      one finished point: its key, identity and figures
    points.csv             the table of the last run's spec (rewritten at its end)
    pareto_*.png, index.html, spec.toml, sweep.json

Unlike the other outputs, a store is written *into* over several runs, so a re-run adds the
missing points: the directory is created all at once (temporary sibling, renamed), then every
file in it is written to a temporary name in the same directory and renamed into place, so a
killed run leaves only complete point files (its temporaries are removed by the next run).
``OUT`` may be missing, empty, or an earlier sweep store; a foreign directory is refused
unless ``force`` (which replaces it, never the current directory, a parent or a directory
holding an input). One run at a time holds the store's lock.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from atsnn.files import OutputPathError, atomic_directory, check_output_path, output_kind

KIND = "sweep"
STORE_FORMAT = 1
_KEY_RE = re.compile(r"^[0-9a-f]{32}$")
_TMP_RE = re.compile(r"^\.(?P<name>.+)-tmp-(?P<pid>\d+)-[A-Za-z0-9_]+$")


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return _finite(obj.item())
    return obj


class SweepStore:
    """An open store directory; use :func:`open_store` to get one."""

    def __init__(self, root: Path):
        self.root = root
        self.points_dir = root / "points"
        self._lock_fd: int | None = None

    # ------------------------------------------------------------ locking
    @contextmanager
    def locked(self) -> Iterator["SweepStore"]:
        """Hold the store's lock for the block; :class:`OutputPathError` if another run
        holds it."""
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutputPathError(f"sweep store '{self.root}' is in use by another "
                                      "'atsnn sweep' run; wait for it or choose another -o") \
                    from None
            self._lock_fd = fd
            self._remove_stale()
            yield self
        finally:
            self._lock_fd = None
            os.close(fd)  # closing releases the lock

    def _remove_stale(self) -> None:
        """Temporaries of killed runs (their process is gone) in the store and its points."""
        from atsnn.files import _pid_alive
        for d in (self.root, self.points_dir):
            for e in d.iterdir():
                m = _TMP_RE.match(e.name)
                if m and e.is_file() and not _pid_alive(int(m["pid"])):
                    e.unlink(missing_ok=True)

    # ------------------------------------------------------------ points
    def load_points(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """(key -> stored record, names of unreadable point files). Unreadable files count as
        missing: their points are computed again and the files replaced."""
        out: dict[str, dict[str, Any]] = {}
        bad: list[str] = []
        for f in sorted(self.points_dir.glob("*.json")):
            key = f.stem
            if not _KEY_RE.match(key):
                continue
            try:
                rec = json.loads(f.read_text(encoding="utf-8"))
                if rec.get("key") != key or not isinstance(rec.get("figures"), dict):
                    raise ValueError("not a point record")
            except (OSError, ValueError, AttributeError):
                bad.append(f.name)
                continue
            out[key] = rec
        return out, bad

    def put_point(self, key: str, identity: dict[str, Any], figures: dict[str, Any]) -> None:
        """Store one finished point (atomic: a reader sees the old state or the whole file)."""
        from atsnn import __version__
        rec = {"format": STORE_FORMAT, "key": key, "atsnn": __version__,
               "identity": _finite(identity), "figures": _finite(figures)}
        self.write_text(f"points/{key}.json", json.dumps(rec, indent=1, sort_keys=True))

    # ------------------------------------------------------------ files
    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write ``OUT/name`` through a temporary file in the same directory and a rename."""
        target = self.root / name
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-tmp-{os.getpid()}-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp, 0o666 & ~mask)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))


def open_store(out: str | Path, *, force: bool = False,
               inputs: Iterable[str | Path] = ()) -> tuple[SweepStore, bool]:
    """(store, created): open the sweep store at ``out``, creating it when ``out`` is missing or
    empty (or foreign, with ``force``). :class:`OutputPathError` for anything else, following
    :func:`atsnn.files.check_output_path` (inputs, current directory, files)."""
    inputs = list(inputs)
    tgt = check_output_path(out, kind=KIND, force=force, inputs=inputs)
    if tgt.is_dir() and output_kind(tgt) == KIND:
        store = SweepStore(tgt)
        try:
            doc = json.loads((tgt / "store.json").read_text(encoding="utf-8"))
            fmt = doc.get("format")
        except (OSError, ValueError, AttributeError):
            fmt = None
        if fmt != STORE_FORMAT or not store.points_dir.is_dir():
            raise OutputPathError(f"output directory '{out}' is an atsnn sweep store of another "
                                  f"format ({fmt!r}, this atsnn reads {STORE_FORMAT}); choose a "
                                  "new directory")
        return store, False
    with atomic_directory(tgt, kind=KIND, force=force, inputs=inputs) as tmp:
        (tmp / "points").mkdir()
        (tmp / "store.json").write_text(json.dumps({"format": STORE_FORMAT}) + "\n",
                                        encoding="utf-8")
    return SweepStore(tgt), True
