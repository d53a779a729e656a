"""Output paths checked before any work: nothing is written where aerec may not, and no
directory aerec did not make is ever replaced."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from aerec.errors import file_error


def check_creatable(path: Path) -> None:
    """The nearest existing folder above `path` is a writable directory."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise file_error(parent, "is not a directory, cannot write beneath it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise file_error(parent, "is not writable")


def check_output_file(path: str | Path) -> Path:
    """A file aerec will write (and replace atomically): not a directory, parent writable."""
    path = Path(path)
    if path.is_dir():
        raise file_error(path, "is a directory; expected a file name")
    check_creatable(path)
    return path


def check_output_dir(
    path: str | Path, allowed: Collection[str], required: Collection[str], what: str
) -> Path:
    """A directory aerec will replace as a whole: it must not exist, be empty, or hold only
    `allowed` names including every `required` one (so aerec made it)."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise file_error(path, f"exists and is not a directory; expected a {what} directory")
    if path.is_dir():
        names = {entry.name for entry in path.iterdir()}
        foreign = sorted(names - set(allowed))
        if foreign or (names and not set(required) <= names):
            shown = ", ".join(foreign[:3] or sorted(set(required) - names))
            raise file_error(
                path,
                f"exists and is not a {what} directory (it holds {len(names)} entries: "
                f"{shown}{', ...' if len(foreign) > 3 else ''}); aerec replaces only its own "
                "output, choose a new directory",
            )
    check_creatable(path)
    return path
