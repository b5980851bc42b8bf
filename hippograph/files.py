"""Durable files: the one place the engine makes a write survive a crash.

:func:`atomic_write` writes a file through a temporary file in the same directory,
fsyncs it, renames it over the final name and fsyncs the directory, so after a crash the
file is either the old one or the new one, whole. :func:`fsync_dir` makes a rename or a
deletion in a directory durable. Used by the vector index files, the archive files and
backups.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "fsync_dir"]


def fsync_dir(directory: Path | str) -> None:
    """Make the renames and deletions in ``directory`` durable (POSIX; elsewhere a
    directory cannot be opened this way and this does nothing)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` via a temp file in the same directory, fsync, then ``os.replace``.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "note.txt"
    >>> atomic_write(target, lambda fh: fh.write(b"kept"))
    >>> target.read_bytes()
    b'kept'
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
