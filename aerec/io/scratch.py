"""Scratch directories a run makes in $TMPDIR, named with its pid so that, when the run is
killed before it can remove them, a later run removes them once that pid is gone."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def scratch_dir(prefix: str, parent: Path | None = None) -> Path:
    """A new directory $TMPDIR/<prefix><pid>-<random> (mode 0700)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))


def remove_abandoned(prefix: str, what: str, parent: Path | None = None) -> list[str]:
    """Remove the scratch directories of `prefix` whose process is gone: only this user's
    directories named by the prefix and a dead pid (never a symlink)."""
    removed = []
    for entry in (parent or Path(tempfile.gettempdir())).glob(f"{prefix}*"):
        pid = entry.name.removeprefix(prefix).split("-", 1)[0]
        if not pid.isdigit() or entry.is_symlink() or not entry.is_dir():
            continue
        if entry.stat().st_uid != os.getuid() or _alive(int(pid)):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    if removed:
        log.info("removed what killed runs left of their %s: %s", what, ", ".join(removed))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
