"""Atomic file output: write to a temporary file beside the target, then rename."""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import tempfile
from pathlib import Path

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_paths(paths, suffixes=None):
    """Yield temporary paths beside ``paths``; rename every one into place once all are written.

    On any error every temporary file is removed and no target is touched: the files are a set,
    written together or not at all. ``suffixes`` (default: none) keep extensions for writers that
    append one (``np.save``).
    """
    paths = [Path(p) for p in paths]
    temps = []
    try:
        for path, suffix in zip(paths, suffixes or [""] * len(paths)):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
            os.close(fd)
            temps.append(Path(tmp))
        yield temps
        for tmp in temps:
            os.chmod(tmp, 0o666 & ~_UMASK)
        for tmp, path in zip(temps, paths):
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path in ``path``'s folder; rename it to ``path`` on success.

    On any error the temporary file is removed, so a reader never sees half a file.
    ``suffix`` keeps the extension for writers that append one (``np.save``).
    """
    with atomic_paths([path], [suffix]) as (tmp,):
        yield tmp


def write_json(path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")


def save_npy(path, array) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path):
    """Parsed JSON, or None if the file is missing or corrupted (tolerant readers)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def update_metadata(run_dir, **fields) -> dict:
    """Merge ``fields`` into ``run_dir/metadata.json`` (written atomically); returns the whole record."""
    path = Path(run_dir) / "metadata.json"
    data = read_json(path) or {}
    data.update(fields)
    write_json(path, data)
    return data


def now() -> str:
    """The local time to the second, ISO 8601 (the timestamps of run records)."""
    return datetime.datetime.now().isoformat(timespec="seconds")


def try_lock(path) -> int | None:
    """Take the exclusive lock of the file ``path`` (created if missing) without waiting: its open file
    descriptor, which holds the lock until closed (or the process ends), or None where another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
