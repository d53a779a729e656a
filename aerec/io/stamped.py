"""Directories that aerec names by run stamp (runs, model versions, candidates): pruning.

Only entries whose names are run stamps, and which are real directories (not links), are
ever removed; anything else in the folder was not made by aerec and is left alone.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Collection
from pathlib import Path

from aerec.contracts import is_run_stamp

log = logging.getLogger(__name__)


def stamped_dirs(parent: Path) -> list[Path]:
    """aerec's stamped directories in `parent`, oldest first."""
    if not parent.is_dir():
        return []
    found = [p for p in parent.iterdir() if is_run_stamp(p.name) and not p.is_symlink()]
    return sorted((p for p in found if p.is_dir()), key=lambda p: p.name)


def prune_stamped(
    parent: Path,
    keep: int,
    protect: Collection[str] = (),
    finished: Callable[[Path], bool] = lambda _: True,
) -> list[str]:
    """Remove all but the newest `keep` finished stamped directories, and every unfinished
    one (the caller holds the lock, so no other run is writing); `protect` names are kept.

    A `parent` that is itself a symlink is not pruned (it would delete outside the folder).
    """
    if parent.is_symlink():
        log.warning("%s is a symlink: old directories there are not pruned", parent)
        return []
    directories = stamped_dirs(parent)
    done = [p.name for p in directories if finished(p)]
    kept = set(done[-keep:]) | set(protect)
    removed = [p.name for p in directories if p.name not in kept]
    for name in removed:
        shutil.rmtree(parent / name)
    return removed
