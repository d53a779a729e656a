"""Atomic file replacement: a reader sees the old files or the new ones, never a mix."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
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


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_group(directory: str | Path, names: Sequence[str]) -> Iterator[list[Path]]:
    """Yield a temporary path in `directory` for each name; when the block succeeds, fsync
    them and rename each over its name, in order.

    Everything that takes space is written inside the block, before the first rename, so a
    full disk or any other failure leaves the old files as they were (the temporaries are
    removed). With several names the last is a completion marker (e.g. _SUCCESS): it is
    removed before the first rename and comes back with the last, so a reader that waits
    for it never pairs a new file with an old one.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    temporaries: list[Path] = []
    try:
        for name in names:
            fd, made = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
            os.close(fd)
            temporaries.append(Path(made))
            make_readable(temporaries[-1])
        yield temporaries
        for temporary in temporaries:
            _fsync_file(temporary)
        if len(names) > 1:
            (directory / names[-1]).unlink(missing_ok=True)
        for temporary, name in zip(temporaries, names, strict=True):
            os.replace(temporary, directory / name)
        fsync_dir(directory)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success fsync it and rename it over `target`.

    On any exception the temporary file is removed and `target` is left untouched.
    """
    target = Path(target)
    with atomic_group(target.parent, [target.name]) as (temporary,):
        yield temporary


def write_text_atomic(target: str | Path, text: str) -> None:
    """Atomically replace `target` with the given text."""
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
