"""The commands as a user runs them: exit codes and one-line errors."""

import json
from pathlib import Path

import polars as pl
from conftest import run_aerec, shared_file


def test_describe_json_with_split() -> None:
    path = shared_file("ml-latest-small/ratings.csv")
    result = run_aerec("describe", "--ratings", str(path), "--split", "temporal:0.98", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["ratings"], report["users"], report["items"]) == (100_836, 610, 9_724)
    assert report["train"]["ratings"] == 98_819 and report["test"]["users"] == 14
    assert report["dropped"]["total"] == 1_829


def test_bad_input_exit_code_and_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,rating\n1,2,4\n1,3,x\n")
    result = run_aerec("describe", "--ratings", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"aerec: error: {bad}:3: rating is not a number: 'x'"
    )


def test_usage_error_exit_code() -> None:
    assert run_aerec("describe").returncode == 2
    assert (
        run_aerec("train-model", "--ratings", "x", "--out", "y", "--split", "nope").returncode == 2
    )


def test_whole_job_through_the_commands(tmp_path: Path) -> None:
    ratings = tmp_path / "data" / "ratings.csv"
    steps = [
        ("synth", "--users", "60", "--items", "40", "--ratings", "1200", "--out", str(ratings)),
        (
            "train-model",
            "--ratings",
            str(ratings),
            "--out",
            str(tmp_path / "ckpt"),
            "--epochs",
            "2",
            "--device",
            "cpu",
        ),
        (
            "export-onnx",
            "--checkpoint",
            str(tmp_path / "ckpt"),
            "--out",
            str(tmp_path / "m.onnx"),
            "--k",
            "4",
        ),
        (
            "score-all",
            "--model",
            str(tmp_path / "m.onnx"),
            "--ratings",
            str(ratings),
            "--out",
            str(tmp_path / "out" / "recs.parquet"),
            "--device",
            "cpu",
        ),
        (
            "show-recs",
            "--recs",
            str(tmp_path / "out" / "recs.parquet"),
            "--movies",
            str(tmp_path / "data" / "movies.csv"),
            "--users",
            "2",
        ),
    ]
    for step in steps:
        result = run_aerec(*step)
        assert result.returncode == 0, (step[0], result.stderr)
    assert pl.read_parquet(tmp_path / "out" / "recs.parquet")["user_id"].n_unique() == 60
    assert result.stdout.count("  1. The ") == 2  # two users, titled
