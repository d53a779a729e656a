"""A "current" pointer: a symlink to one complete directory, switched by a single rename.

A published directory (a nightly run, a model version) is written completely first; then
`current` is pointed at it by renaming a new symlink over the old one, so any kill or
full disk leaves either the previous target or the new one current, never a mix. The
files users open by name (recs.parquet, model.onnx, ...) are fixed links through
`current`, so they switch together with it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aerec.errors import file_error
from aerec.io.atomic import fsync_dir


def _replace_with_link(path: Path, target: str) -> None:
    """Atomically make `path` a symlink to `target` (relative to path's directory)."""
    temporary = Path(tempfile.mktemp(prefix=f".{path.name}.", suffix=".link", dir=path.parent))
    os.symlink(target, temporary)
    try:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def switch(link: Path, target: Path) -> None:
    """Point `link` at `target` (a path relative to link's directory) by one rename."""
    _replace_with_link(link, str(target))
    fsync_dir(link.parent)


def resolve(link: Path) -> Path | None:
    """The directory `link` points at; None when there is no link yet.

    A link that exists but leads nowhere, or anything else in its place, is an InputError:
    the caller must not act as if nothing were current.
    """
    if not link.is_symlink():
        if link.exists():
            raise file_error(link, "expected aerec's symlink to the current directory")
        return None
    target = link.parent / os.readlink(link)
    if not target.is_dir():
        raise file_error(link, f"points to {os.readlink(link)}, which is not a directory")
    return target


def link_through(directory: Path, pointer: str, names: Sequence[str]) -> None:
    """Make each DIR/name a symlink to pointer/name (once; later switches move them all).

    A regular file left by an older layout is replaced by the link; the last name is the
    completion marker and is removed first, so a reader never pairs new and old files.
    """
    wanted = {name: f"{pointer}/{name}" for name in names}
    stale = [name for name in names if _link_target(directory / name) != wanted[name]]
    if not stale:
        return
    if names[-1] in stale:
        (directory / names[-1]).unlink(missing_ok=True)
    for name in stale:
        _replace_with_link(directory / name, wanted[name])
    fsync_dir(directory)


def _link_target(path: Path) -> str | None:
    return os.readlink(path) if path.is_symlink() else None
