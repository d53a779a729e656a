"""Errors that carry the process exit code documented in README."""

from __future__ import annotations

import importlib.util

from aerec.contracts import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_TERMINATED,
)


class AerecError(Exception):
    """An expected failure with a one-line message and an exit code."""

    exit_code = EXIT_INTERNAL


class InputError(AerecError):
    """Bad usage or bad input: a file that is missing, empty or malformed."""

    exit_code = EXIT_BAD_INPUT


class GateRefused(InputError):
    """A publish or health gate refused the table: nothing published (exit code 2)."""

    def __init__(self, gate: str, message: str) -> None:
        super().__init__(message)
        self.gate = gate  # a name in contracts.GATES


class LockHeld(AerecError):
    """Another run holds the lock (exit code 75, EX_TEMPFAIL: try later)."""

    exit_code = EXIT_LOCKED


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread so every clean-up block runs. Like
    KeyboardInterrupt it is no Exception, so no library's `except Exception` (Ray Data's
    error reporting, say) takes it for a failure of its own."""

    exit_code = EXIT_TERMINATED


def exit_code_of(error: BaseException) -> int:
    """The exit code the CLI gives for this error."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return int(getattr(error, "exit_code", EXIT_INTERNAL))


def file_error(path: object, problem: str, line: int | None = None) -> InputError:
    """An InputError that names the file (and line, when known) and the problem."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return InputError(f"{where}: {problem}")


def require(module: str, extra: str) -> None:
    """Fail with one line when an optional dependency of this command is not installed."""
    if importlib.util.find_spec(module) is None:
        raise InputError(
            f"this command needs {module}, which is not installed: pip install 'aerec[{extra}]'"
        )
