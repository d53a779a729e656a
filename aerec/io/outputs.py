"""Output paths checked before any work: nothing is written where aerec may not, and no
directory aerec did not make is ever replaced."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from aerec.contracts import CURRENT_LINK, OWNER_MARKER, is_run_stamp
from aerec.errors import file_error
from aerec.io.atomic import write_text_atomic


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


def check_disjoint(outputs: Iterable[str | Path], inputs: Iterable[str | Path]) -> None:
    """No output is, contains or lies inside an input of the run (symlinks followed), so
    a run can never replace or delete what it reads."""
    sources = [(Path(source), Path(source).resolve()) for source in inputs]
    for output in outputs:
        target = Path(output).resolve()
        for source, real in sources:
            if target == real or target.is_relative_to(real) or real.is_relative_to(target):
                raise file_error(
                    output,
                    f"is, contains or lies inside the input {source}; "
                    "choose an output apart from the run's inputs",
                )


def model_inputs(model: str | Path) -> list[Path]:
    """What a run that scores with `model` reads: the file, and the model directory it
    sits in when that is aerec's (it has a `current` link)."""
    model = Path(model)
    inside = model.parent
    return [model, inside] if (inside / CURRENT_LINK).is_symlink() else [model]


def marked_kind(directory: Path) -> str | None:
    """The kind aerec's marker in `directory` names (None: no readable marker there)."""
    marker = directory / OWNER_MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        kind = json.loads(marker.read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def claim_directory(path: str | Path, kind: str, made_by_aerec: Callable[[Path], bool]) -> Path:
    """Make `path` aerec's directory of `kind`, or refuse it with nothing touched.

    Accepted: a directory that does not exist or is empty (created and marked), one whose
    marker names `kind`, or one `made_by_aerec` recognises as written by an aerec from
    before markers (then marked). Anything else (files aerec did not write, another
    kind's marker) is an InputError. A symlink is judged by the directory it leads to.
    """
    path = Path(path)
    real = path.resolve()
    if real.exists() and not real.is_dir():
        raise file_error(path, f"exists and is not a directory; expected an aerec {kind} one")
    if real.is_dir():
        names = sorted(entry.name for entry in real.iterdir())
        marked = marked_kind(real)
        if marked == kind:
            return path
        if marked is not None or (names and not made_by_aerec(real)):
            shown = f"aerec's marker for {marked}" if marked else ", ".join(names[:3])
            raise file_error(
                path,
                f"is not an aerec {kind} directory (it holds {shown}"
                f"{', ...' if len(names) > 3 and not marked else ''}); aerec writes only "
                f"into a new or empty directory or one it marked ({OWNER_MARKER}): "
                "choose another",
            )
    check_creatable(real)
    real.mkdir(parents=True, exist_ok=True)
    write_text_atomic(real / OWNER_MARKER, json.dumps({"owner": "aerec", "kind": kind}) + "\n")
    return path


def is_legacy_layout(
    directory: Path, links: Collection[str], stamped: str, others: Collection[str]
) -> bool:
    """Whether `directory` holds only what an aerec from before markers wrote there: the
    `current` link to `stamped`/<run stamp>, each of `links` a link through it, the
    `stamped` folder and `others` (e.g. the lock file)."""
    for entry in directory.iterdir():
        name = entry.name
        if name == CURRENT_LINK:
            target = os.readlink(entry) if entry.is_symlink() else ""
            folder, _, stamp = target.partition("/")
            if folder != stamped or not is_run_stamp(stamp):
                return False
        elif name in links:
            if not entry.is_symlink() or os.readlink(entry) != f"{CURRENT_LINK}/{name}":
                return False
        elif name == stamped:
            if entry.is_symlink() or not entry.is_dir():
                return False
        elif name not in others or entry.is_symlink():
            return False
    return True
