"""Writing output directories all at once, without ever destroying what atsnn did not write.

Rules (README "Outputs"):

- An output directory is written into a temporary sibling ``.NAME-tmp-PID-xxxx`` and renamed
  into place only when complete; on any error the temporary directory is removed.
- The target may be missing, an empty directory, or an earlier atsnn output of the same kind
  (it holds the marker file :data:`MARKER` naming that kind). Anything else is refused with
  :class:`OutputPathError` naming the path. ``force=True`` also replaces a foreign directory,
  but never the current directory, one of its parents, or a directory that holds an input of
  the same command; an existing file is never replaced.
- Temporary directories left by a killed run (their PID no longer lives) are removed by the
  next run into the same place.
- Created directories and files follow the process umask.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from atsnn.errors import AtsnnError

#: name of the marker file atsnn writes into every output directory it creates
MARKER = ".atsnn-output"
_TMP_RE = re.compile(r"^\.(?P<name>.+)-tmp-(?P<pid>\d+)-[A-Za-z0-9_]+$")


class OutputPathError(AtsnnError, OSError):
    """An output path cannot be written without destroying something atsnn did not write."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _apply_umask(root: Path) -> None:
    """Give ``root`` and everything below it the modes a plain ``mkdir``/``open`` would have."""
    mask = _umask()
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o777 & ~mask)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, 0o666 & ~mask)


def output_kind(directory: str | Path) -> str | None:
    """Kind recorded in ``directory``'s marker, or None when it holds no readable marker."""
    try:
        doc = json.loads((Path(directory) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = doc.get("kind") if isinstance(doc, dict) else None
    return kind if isinstance(kind, str) else None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(target: Path) -> None:
    """Remove temporary siblings of ``target`` left by runs whose process is gone."""
    parent = target.parent
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for e in entries:
        m = _TMP_RE.match(e.name)
        if m and m.group("name") == target.name and e.is_dir() and not _pid_alive(int(m["pid"])):
            shutil.rmtree(e, ignore_errors=True)


def _is_within(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def check_output_path(target: str | Path, *, kind: str, inputs: Iterable[str | Path] = (),
                      force: bool = False, allow_file: bool = False) -> Path:
    """Raise :class:`OutputPathError` unless ``target`` may be (re)written as a ``kind`` output.

    ``inputs`` are the paths the same command reads; the target may not hold any of them.
    With ``allow_file`` the target is a single file (it may replace a file, never an input).
    Returns the resolved target path.
    """
    if str(target).strip() == "":
        raise OutputPathError("output path is empty; give a directory name with -o")
    raw = Path(target)
    tgt = raw.resolve()
    cwd = Path.cwd().resolve()
    for inp in inputs:
        if inp is None or str(inp) == "":
            continue
        ip = Path(inp).resolve()
        if ip == tgt or _is_within(ip, tgt):
            raise OutputPathError(f"output path '{raw}' holds an input of this command ('{inp}'); "
                                  "choose another output path")
    if _is_within(cwd, tgt):
        raise OutputPathError(f"output path '{raw}' is the current directory or one of its parents; "
                              "choose a new directory")
    for anc in tgt.parents:
        if anc.exists() and not anc.is_dir():
            raise OutputPathError(f"output path '{raw}': '{anc}' is a file, not a directory")
    if allow_file:
        if tgt.is_dir():
            raise OutputPathError(f"output path '{raw}' is a directory; give a file name")
        return tgt
    if tgt.is_file() or (tgt.exists() and not tgt.is_dir()):
        raise OutputPathError(f"output path '{raw}' is an existing file; give a directory name")
    if tgt.is_dir():
        try:
            empty = not any(tgt.iterdir())
        except OSError as exc:
            raise OutputPathError(f"output directory '{raw}' cannot be read ({exc.strerror})") from None
        found = output_kind(tgt)
        if not empty and found != kind and not force:
            what = (f"an atsnn {found} output, not a {kind} output" if found
                    else "files atsnn did not write")
            raise OutputPathError(f"output directory '{raw}' holds {what}; choose a new directory "
                                  "(or pass --force to replace it)")
    return tgt


def _writable_parent(parent: Path, raw: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create output directory '{raw}': "
                              f"{exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write output '{raw}': directory '{parent}' is not writable")


@contextmanager
def atomic_directory(target: str | Path, *, kind: str, inputs: Iterable[str | Path] = (),
                     force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``target``.

    The target is checked first (:func:`check_output_path`); the marker file is written into
    the new directory; on error the temporary directory is removed and the target is untouched.
    """
    raw = Path(target)
    tgt = check_output_path(raw, kind=kind, inputs=inputs, force=force)
    parent = tgt.parent
    _writable_parent(parent, raw)
    remove_stale_temporaries(tgt)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{tgt.name}-tmp-{os.getpid()}-", dir=parent))
    except OSError as exc:
        raise OutputPathError(f"cannot write output '{raw}': {exc.strerror or exc}") from None
    try:
        yield tmp
        from atsnn import __version__
        (tmp / MARKER).write_text(json.dumps({"kind": kind, "atsnn": __version__}) + "\n",
                                  encoding="utf-8")
        _apply_umask(tmp)
        if tgt.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{tgt.name}-tmp-{os.getpid()}-", dir=parent))
            os.rmdir(old)
            tgt.replace(old)
            try:
                tmp.replace(tgt)
            except OSError:
                old.replace(tgt)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.replace(tgt)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_file(target: str | Path, *, inputs: Iterable[str | Path] = (),
                force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling file path; on success it becomes ``target``.

    An existing file is replaced only with ``force`` (never an input of the command)."""
    raw = Path(target)
    tgt = check_output_path(raw, kind="file", inputs=inputs, allow_file=True)
    if tgt.exists() and not force:
        raise OutputPathError(f"output file '{raw}' exists; choose a new name (or pass --force "
                              "to replace it)")
    _writable_parent(tgt.parent, raw)
    fd, name = tempfile.mkstemp(prefix=f".{tgt.name}-tmp-{os.getpid()}-", dir=tgt.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        tmp.replace(tgt)
    finally:
        if tmp.exists():
            tmp.unlink()
