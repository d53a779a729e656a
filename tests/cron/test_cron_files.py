"""The files in cron/: the crontab lines parse, the systemd units verify."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CRON = Path(__file__).resolve().parents[2] / "cron"
FIELDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def field_ok(text: str, low: int, high: int) -> bool:
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            return False
        if base == "*":
            continue
        bounds = base.split("-")
        if not all(b.isdigit() and low <= int(b) <= high for b in bounds) or len(bounds) > 2:
            return False
    return True


def crontab_entries() -> list[list[str]]:
    lines = [
        line
        for line in (CRON / "crontab").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return [line.split(None, 5) for line in lines]


def test_crontab_lines_parse() -> None:
    entries = crontab_entries()
    assert len(entries) == 2
    for fields in entries:
        assert len(fields) == 6
        for text, (low, high) in zip(fields[:5], FIELDS, strict=True):
            assert field_ok(text, low, high), text
    commands = [fields[5] for fields in entries]
    assert re.search(r"aerec nightly .*--out-dir", commands[0])
    assert re.search(r"aerec retrain .*--model-dir", commands[1])


def test_field_parser_rejects_nonsense() -> None:
    assert not field_ok("61", 0, 59) and not field_ok("a", 0, 59) and field_ok("*/5", 0, 59)


def test_crontab_commands_are_real_options() -> None:
    """Every option the crontab passes exists on the command it calls."""
    for fields in crontab_entries():
        words = fields[5].split(">>")[0].split()
        sub = words[1]
        help_text = subprocess.run(
            [sys.executable, "-m", "aerec", sub, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for word in words[2:]:
            if word.startswith("--"):
                assert word in help_text, (sub, word)


UNITS = [
    "aerec-nightly.service",
    "aerec-nightly.timer",
    "aerec-retrain.service",
    "aerec-retrain.timer",
]


def test_units_are_hardened() -> None:
    for name in UNITS[::2]:
        text = (CRON / name).read_text()
        for setting in (
            "Type=oneshot",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=",
            "User=aerec",
        ):
            assert setting in text, (name, setting)
    for name in UNITS[1::2]:
        text = (CRON / name).read_text()
        assert "OnCalendar=" in text and "Persistent=true" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    for name in UNITS:
        # The installed paths do not exist here: point ExecStart at a real executable.
        text = (CRON / name).read_text().replace("/opt/aerec/.venv/bin/aerec", "/bin/true")
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in UNITS)],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and not problems, result.stderr


def test_units_write_metrics_where_they_may() -> None:
    """Each service passes --metrics-file into a directory its ReadWritePaths allows."""
    for name in UNITS[::2]:
        text = (CRON / name).read_text()
        found = re.search(r"--metrics-file (\S+)", text)
        assert found is not None, name
        writable = re.search(r"^ReadWritePaths=(.+)$", text, re.MULTILINE)
        assert (
            writable is not None and str(Path(found.group(1)).parent) in writable.group(1).split()
        )


def test_alert_rules_name_only_metrics_aerec_writes() -> None:
    from aerec.jobs.metrics import HELP

    written = {f"aerec_{job}_{name}" for job, names in HELP.items() for name in names}
    rules = (CRON / "aerec-alerts.yml").read_text()
    named = set(re.findall(r"\baerec_\w+", rules))
    assert named and named <= written, named - written
    assert {"AerecNightlyNoSuccess", "AerecNightlyGateRefused", "AerecNightlyChurnHigh"} <= set(
        re.findall(r"alert: (\w+)", rules)
    )
