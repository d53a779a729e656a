"""--log-format json: every line one JSON object with the run and the stage, the error
line too; $AEREC_LOG_FORMAT does the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import run_aerec, shuffled_ids

from aerec.logs import stage_of

KEYS = {"time", "level", "stage", "run", "logger", "message"}


def records(stderr: str) -> list[dict[str, object]]:
    lines = stderr.splitlines()
    assert lines
    found = [json.loads(line) for line in lines]  # a line that is not JSON fails here
    assert all(set(entry) == KEYS for entry in found)
    return found


def test_a_nightly_run_logs_json_lines_with_its_run(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "recs"
    args = ["--log-format", "json", "nightly", "--model", str(tiny_model)]
    result = run_aerec(*args, "--ratings", str(tiny_data[0]), "--out-dir", str(out))
    assert result.returncode == 0, result.stderr
    logged = records(result.stderr)
    run = json.loads((out / "current" / "manifest.json").read_text())["run"]
    assert {entry["run"] for entry in logged} == {run}
    assert {"nightly", "score"} <= {entry["stage"] for entry in logged}
    shuffled = shuffled_ids(tiny_data[0], tmp_path / "shuffled.csv")
    after = ["nightly", "--log-format", "json", "--model", str(tiny_model)]  # either place
    failed = run_aerec(*after, "--ratings", str(shuffled), "--out-dir", str(out))
    assert failed.returncode == 2
    last = records(failed.stderr)[-1]
    assert last["level"] == "error" and last["stage"] == "cli"
    assert str(last["message"]).startswith("aerec: error: ") and "--min-popularity" in str(
        last["message"]
    )


def test_the_environment_chooses_json_for_a_stage_command(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    score_all = Path(sys.executable).parent / "score-all"
    command = [str(score_all), "--model", str(tiny_model)]
    command += ["--ratings", str(tiny_data[0]), "--out", str(tmp_path / "recs.parquet")]
    env = {**os.environ, "AEREC_LOG_FORMAT": "json"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert {entry["stage"] for entry in records(result.stderr)} == {"score"}


def test_stages_by_logger() -> None:
    assert stage_of("aerec.score.publish") == "score"
    assert stage_of("aerec.jobs.nightly") == "nightly"
    assert stage_of("aerec.jobs.retrain") == "retrain"
    assert stage_of("aerec.train.trainer") == "train"
    assert stage_of("aerec") == "cli"
    assert stage_of("ray.data") == "ray"
