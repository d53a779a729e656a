"""The small log of a job's attempts in the directory it publishes into (ATTEMPTS_FILE):
one JSON object a line, the newest last, at most MAX_ATTEMPTS kept. `aerec status` reads
it to say when the last run failed and why; the job writes it under its lock."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aerec.contracts import ATTEMPTS_FILE, MAX_ATTEMPTS, Attempt
from aerec.errors import exit_code_of
from aerec.io.atomic import write_text_atomic


def read_attempts(directory: Path) -> list[Attempt]:
    """The attempts logged in `directory`, oldest first (none: an empty list); a line
    that is not an attempt (a torn write of an older aerec) is skipped."""
    try:
        lines = (directory / ATTEMPTS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    attempts = []
    for line in lines:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and "finished" in entry:
                attempts.append(Attempt(**entry))  # type: ignore[typeddict-item]
    return attempts


@contextlib.contextmanager
def logged_attempt(directory: Path, details: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Log the attempt the block makes: when it started and finished, its exit code and,
    when it failed, the error's one line. The block may add to the yielded details."""
    started = time.time()
    found: dict[str, Any] = dict(details)
    try:
        yield found
    except BaseException as error:
        message = str(error) or type(error).__name__
        _append(directory, _ended(started, exit_code_of(error), message, found))
        raise
    _append(directory, _ended(started, 0, "", found))


def _ended(started: float, exit_code: int, error: str, details: dict[str, Any]) -> Attempt:
    return Attempt(
        started=started, finished=time.time(), exit_code=exit_code, error=error, details=details
    )


def _append(directory: Path, attempt: Attempt) -> None:
    kept = [*read_attempts(directory), attempt][-MAX_ATTEMPTS:]
    text = "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in kept)
    write_text_atomic(directory / ATTEMPTS_FILE, text)
