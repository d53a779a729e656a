"""aerec status: a published directory's current run, its age, the last failure and why,
and the exit code a monitoring script reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import nightly_run, run_aerec, shuffled_ids

from aerec.contracts import ATTEMPTS_FILE, MAX_ATTEMPTS, OWNED_PUBLISHED
from aerec.errors import GateRefused, InputError
from aerec.jobs.attempts import logged_attempt, read_attempts
from aerec.jobs.status import directory_status


@pytest.fixture(scope="module")
def published(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("published") / "recs"
    nightly_run(tiny_model, tiny_data[0], out, device="cpu")
    return out


def test_a_fresh_published_directory_is_healthy(published: Path) -> None:
    result = run_aerec("status", str(published), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    manifest = json.loads((published / "current" / "manifest.json").read_text())
    assert report["healthy"] and report["problems"] == [] and report["kind"] == OWNED_PUBLISHED
    assert report["current"]["name"] == manifest["run"]
    assert report["current"]["rows"] == manifest["rows"]
    assert report["current"]["health"] == manifest["health"]
    assert report["last_attempt"]["exit_code"] == 0
    assert report["last_attempt"]["run"] == manifest["run"]
    text = run_aerec("status", str(published))
    assert text.returncode == 0 and "healthy" in text.stdout and "health: catalogue" in text.stdout


def test_a_stale_table_fails_the_status(published: Path) -> None:
    report = directory_status(published, max_age_hours=1e-6)  # 3.6 ms: older than that
    assert not report["healthy"] and "old, more than" in report["problems"][0]
    assert run_aerec("status", str(published), "--max-age-hours", "1e-6").returncode == 1


def test_the_last_failure_and_its_reason_are_shown(
    published: Path, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    import shutil

    out = tmp_path / "recs"
    shutil.copytree(published, out, symlinks=True)
    shuffled = shuffled_ids(tiny_data[0], tmp_path / "shuffled.csv")
    with pytest.raises(GateRefused):
        nightly_run(tiny_model, shuffled, out, device="cpu")
    result = run_aerec("status", str(out))
    assert result.returncode == 1
    assert (
        "the last attempt failed" in result.stdout and "--min-popularity-agreement" in result.stdout
    )
    report = directory_status(out)
    assert report["last_failure"]["exit_code"] == 2
    assert report["current"]["name"] == directory_status(published)["current"]["name"]
    nightly_run(tiny_model, tiny_data[0], out, device="cpu")
    again = directory_status(out)
    # the same failure, seen later: all but its age, which only grows
    failure, before = dict(again["last_failure"]), dict(report["last_failure"])
    assert again["healthy"] and failure.pop("hours_ago") >= before.pop("hours_ago")
    assert failure == before


def test_the_attempts_log_keeps_the_newest(tmp_path: Path) -> None:
    for number in range(MAX_ATTEMPTS + 3):
        with logged_attempt(tmp_path, {"number": number}):
            pass
    attempts = read_attempts(tmp_path)
    assert [a["details"]["number"] for a in attempts] == list(range(3, MAX_ATTEMPTS + 3))
    with (tmp_path / ATTEMPTS_FILE).open("a") as log:
        log.write('{"torn": ')  # a torn line is skipped, not fatal
    assert len(read_attempts(tmp_path)) == MAX_ATTEMPTS


def test_a_directory_aerec_does_not_own_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a directory aerec nightly or aerec retrain"):
        directory_status(tmp_path)
    result = run_aerec("status", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
