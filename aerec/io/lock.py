"""An OS-level run lock: held for a whole run, released by the kernel if the process dies."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from aerec.errors import LockHeld


@contextlib.contextmanager
def run_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` or raise LockHeld at once.

    flock belongs to the open file, so a crashed or killed run leaves no stale lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise LockHeld(
                f"{path}: another run holds the lock (pid {holder}); try later"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
