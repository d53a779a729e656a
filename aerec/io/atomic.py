"""Atomic file replacement: a reader sees the old files or the new ones, never a mix."""

from __future__ import annotations

import contextlib
import os
import secrets
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


class AtomicGroup:
    """A temporary path in `directory` for each name; `commit` fsyncs them and renames
    each over its name, in order; `discard` removes them (both are idempotent).

    Everything that takes space is written before `commit`, before the first rename, so a
    full disk or any other failure leaves the old files as they were. With several names
    the last is a completion marker (e.g. _SUCCESS): it is removed before the first rename
    and comes back with the last, so a reader that waits for it never pairs a new file
    with an old one.
    """

    def __init__(self, directory: str | Path, names: Sequence[str]) -> None:
        self.directory = Path(directory)
        self.names = list(names)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.temporaries: list[Path] = []
        try:
            for name in names:
                # listed before it exists: a signal between creating and listing it (the
                # CLI turns SIGTERM into an exception) would leave it behind
                made = self.directory / f".{name}.{secrets.token_hex(6)}.tmp"
                self.temporaries.append(made)
                os.close(os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                make_readable(made)
        except BaseException:
            self.discard()
            raise

    def commit(self) -> None:
        try:
            for temporary in self.temporaries:
                _fsync_file(temporary)
            if len(self.names) > 1:
                (self.directory / self.names[-1]).unlink(missing_ok=True)
            for temporary, name in zip(self.temporaries, self.names, strict=True):
                os.replace(temporary, self.directory / name)
            fsync_dir(self.directory)
        finally:
            self.discard()

    def discard(self) -> None:
        for temporary in self.temporaries:
            temporary.unlink(missing_ok=True)
        self.temporaries = []


@contextlib.contextmanager
def atomic_group(directory: str | Path, names: Sequence[str]) -> Iterator[list[Path]]:
    """An AtomicGroup as a block: committed when the block succeeds, else discarded."""
    group = AtomicGroup(directory, names)
    try:
        yield list(group.temporaries)
        group.commit()
    finally:
        group.discard()


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
