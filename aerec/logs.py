"""Log records as text for a terminal, or as one JSON object a line (`--log-format json`)
for journald and log shippers, each with the run it belongs to and the stage that
logged it."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

LOG_FORMATS = ("text", "json")
# one job a process: every thread's records carry its run; the format chosen last
_current: dict[str, str | None] = {"run": None, "format": "text"}
# The stage of a logger below aerec, by its module path; the package name otherwise.
_STAGES = {"aerec.jobs.nightly": "nightly", "aerec.jobs.retrain": "retrain"}


def set_run(run: str) -> None:
    """The run (a run or candidate stamp) that records logged from here on belong to."""
    _current["run"] = run


def stage_of(logger: str) -> str:
    """aerec.score.publish -> score; aerec.jobs.nightly -> nightly; aerec -> cli; other
    libraries: their top-level name."""
    for prefix, stage in _STAGES.items():
        if logger == prefix or logger.startswith(prefix + "."):
            return stage
    parts = logger.split(".")
    if parts[0] != "aerec":
        return parts[0]
    return parts[1] if len(parts) > 1 else "cli"  # "aerec": the CLI's own error line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, stage, run, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "stage": stage_of(record.name),
            "run": _current["run"],
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def is_json() -> bool:
    """Whether records are written as JSON (so the CLI's error line is one too)."""
    return _current["format"] == "json"


def formatter(log_format: str) -> logging.Formatter:
    _current["format"] = log_format
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
