"""`aerec status DIR`: whether a published directory (aerec nightly) or a model directory
(aerec retrain) is healthy, on one screen or as JSON, with an exit code for monitoring:
0 healthy; 1 stale, nothing current, or the last attempt failed."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aerec.contracts import (
    CURRENT_LINK,
    MANIFEST_FILE,
    OWNED_MODELS,
    OWNED_PUBLISHED,
    STALE_HOURS,
    STALE_MODEL_HOURS,
    Attempt,
    stamp_time,
)
from aerec.errors import AerecError, file_error
from aerec.io.outputs import marked_kind
from aerec.io.pointer import resolve
from aerec.jobs.attempts import read_attempts
from aerec.score.health import describe_health


def directory_status(directory: Path, max_age_hours: float | None = None) -> dict[str, Any]:
    """What `aerec status` reports of `directory`: its kind, what is current and how old,
    the last attempt and the last failure, and the problems (none: healthy)."""
    kind = marked_kind(directory) if directory.is_dir() else None
    if kind not in (OWNED_PUBLISHED, OWNED_MODELS):
        raise file_error(directory, "is not a directory aerec nightly or aerec retrain writes")
    limit = max_age_hours or (STALE_HOURS if kind == OWNED_PUBLISHED else STALE_MODEL_HOURS)
    report: dict[str, Any] = {"directory": str(directory), "kind": kind, "problems": []}
    try:
        current = resolve(directory / CURRENT_LINK)
    except AerecError as error:
        current = None
        report["problems"].append(str(error))
    if current is None:
        report["problems"].append("nothing is current yet")
    else:
        report["current"] = _current(current, kind)
        age = _hours_since(stamp_time(current.name))
        if age > limit:
            report["problems"].append(f"current is {age:.1f} h old, more than {limit:g} h")
    attempts = read_attempts(directory)
    if attempts:
        report["last_attempt"] = _attempt(attempts[-1])
        if attempts[-1]["exit_code"] != 0:
            report["problems"].append(f"the last attempt failed: {attempts[-1]['error']}")
    failures = [a for a in attempts if a["exit_code"] != 0]
    if failures:
        report["last_failure"] = _attempt(failures[-1])
    report["healthy"] = not report["problems"]
    return report


def _current(current: Path, kind: str) -> dict[str, Any]:
    """The current run (its manifest's figures) or model version."""
    found: dict[str, Any] = {
        "name": current.name,
        "age_hours": round(_hours_since(stamp_time(current.name)), 3),
    }
    if kind == OWNED_PUBLISHED:
        try:
            manifest = json.loads((current / MANIFEST_FILE).read_text())
        except (OSError, ValueError) as error:
            raise file_error(current / MANIFEST_FILE, f"unreadable ({error})") from None
        names = ("rows", "users", "k", "model_version", "provider", "generated_at", "health")
        found.update({name: manifest[name] for name in names if name in manifest})
    return found


def _attempt(attempt: Attempt) -> dict[str, Any]:
    return {
        "finished": _utc(attempt["finished"]),
        "hours_ago": round(_hours_since(attempt["finished"]), 3),
        "exit_code": attempt["exit_code"],
        "error": attempt["error"],
        **attempt["details"],
    }


def _hours_since(moment: float) -> float:
    return (time.time() - moment) / 3600


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_status(report: dict[str, Any]) -> str:
    """The report as a few lines for a terminal."""
    verdict = "healthy" if report["healthy"] else "NOT healthy"
    lines = [f"{report['directory']}: {report['kind']}, {verdict}"]
    lines += [f"  problem: {problem}" for problem in report["problems"]]
    current = report.get("current")
    if current is not None:
        what = "run" if report["kind"] == OWNED_PUBLISHED else "version"
        lines.append(f"  current {what} {current['name']}, {current['age_hours']:.1f} h old")
        if "rows" in current:
            lines.append(
                f"  {current['rows']:,} rows for {current['users']:,} users, k={current['k']}, "
                f"model {current['model_version'][:12]}, {current.get('provider', '?')}"
            )
        if current.get("health"):
            lines.append(f"  health: {describe_health(current['health'])}")
    last, failure = report.get("last_attempt"), report.get("last_failure")
    if last is not None:
        same = " (the last failure)" if failure == last else ""
        lines.append(f"  last attempt: {last['finished']}, exit {last['exit_code']}{same}")
    if failure is not None and failure != last:
        lines.append(
            f"  last failure: {failure['finished']}, exit {failure['exit_code']}: "
            f"{failure['error']}"
        )
    return "\n".join(lines)
