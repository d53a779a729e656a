"""Atomic file replacement: a reader sees the old file or the new one, never a mix."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _default_mode(directory: bool = False) -> int:
    """The mode open() or mkdir() would give under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def make_readable(path: Path) -> None:
    """Give a mkstemp/mkdtemp path (mode 0600/0700) the usual mode under the umask."""
    os.chmod(path, _default_mode(path.is_dir()))


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry (a rename) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success fsync it and rename it over `target`.

    On any exception the temporary file is removed and `target` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    temporary = Path(name)
    make_readable(temporary)
    try:
        yield temporary
        with temporary.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        fsync_dir(target.parent)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(target: str | Path, text: str) -> None:
    """Atomically replace `target` with the given text."""
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
