"""The commands as a user runs them: exit codes and one-line errors."""

import json
import re
from pathlib import Path

import onnx
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
    assert "score: the model's logit for the item" in result.stdout
    assert "warning" not in result.stderr
    other = tmp_path / "other" / "movies.csv"  # another data set's movies: few ids in common
    run_aerec(
        "synth",
        "--users",
        "5",
        "--items",
        "8",
        "--ratings",
        "20",
        "--out",
        str(other.with_name("ratings.csv")),
    )
    shown = run_aerec(
        "show-recs", "--recs", str(tmp_path / "out" / "recs.parquet"), "--movies", str(other)
    )
    assert shown.returncode == 0, shown.stderr
    assert re.search(
        r"warning: .*movies.csv: no title for \d+ of the table's \d+ items", shown.stderr
    )


def bad_input_cases(tmp: Path, model: Path, ratings: Path, checkpoint: Path) -> dict[str, tuple]:
    """Each case: the command's arguments and a fragment its one error line must hold."""
    foreign = tmp / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    empty_model = tmp / "empty.onnx"
    empty_model.write_bytes(b"")
    proto = onnx.load(str(model))
    for prop in proto.metadata_props:
        if prop.key == "aerec.k":
            prop.value = "five"
    malformed = tmp / "malformed.onnx"
    onnx.save(proto, str(malformed))
    latin1 = tmp / "movies.csv"
    latin1.write_bytes("movieId,title,genres\n1,Café,Drama\n".encode("latin-1"))
    users = tmp / "users.txt"
    users.write_text("user_id\n1\n2x\n")
    huge_users = tmp / "huge-users.txt"
    huge_users.write_text(f"{2**63}\n")  # alone: not to be mistaken for a header
    long_field = tmp / "long.csv"
    long_field.write_text("user_id,item_id,rating\n1,2," + "9" * 1_000_000 + "\n")
    score = ("score-all", "--model", str(model), "--ratings", str(ratings), "--device", "cpu")
    out = ("--out", str(tmp / "recs.parquet"))
    movies = str(ratings.parent / "movies.csv")
    return {
        "train into a foreign dir": (
            ("train-model", "--ratings", str(ratings), "--out", str(foreign)),
            "is not a checkpoint directory",
        ),
        "export k above the catalogue": (
            (
                "export-onnx",
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(tmp / "m.onnx"),
                "--k",
                "10000",
            ),
            "knows only 80 items",
        ),
        "empty model": (
            ("score-all", "--model", str(empty_model), "--ratings", str(ratings), *out),
            "not a loadable ONNX model",
        ),
        "malformed metadata": (
            ("score-all", "--model", str(malformed), "--ratings", str(ratings), *out),
            "malformed aerec metadata",
        ),
        "non-UTF-8 movies": (
            (
                "recommend",
                "--model",
                str(model),
                "--ratings",
                str(ratings),
                "--movies",
                str(latin1),
                "--user",
                "1",
            ),
            "not UTF-8 text",
        ),
        "recommend k above the model's": (
            (
                "recommend",
                "--model",
                str(model),
                "--ratings",
                str(ratings),
                "--movies",
                movies,
                "--user",
                "1",
                "--k",
                "50",
            ),
            "computes only its top 5",
        ),
        "bad users line": ((*score, *out, "--users", str(users)), f"{users}:3: not a user id"),
        "a user id beyond int64": (
            (*score, *out, "--users", str(huge_users)),
            f"{huge_users}:1: user id 9223372036854775808 is outside the int64 range",
        ),
        "absurd batch size": ((*score, *out, "--batch-size", "100000000000"), "--batch-size"),
        "a directory as the ratings file": (
            ("score-all", "--model", str(model), "--ratings", str(tmp), *out),
            "is a directory",
        ),
        "output beneath a file": (
            (*score, "--out", str(users / "recs.parquet")),
            "is not a directory, cannot write beneath it",
        ),
        "a megabyte-long field": (
            ("describe", "--ratings", str(long_field)),
            "long.csv:2:",
        ),
    }


def test_every_bad_input_is_exit_2_with_one_short_line(
    tiny_model: Path, tiny_data: tuple[Path, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    cases = bad_input_cases(tmp_path, tiny_model, tiny_data[0], tiny_checkpoint)
    for case, (args, fragment) in cases.items():
        result = run_aerec(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (case, result.stderr[-500:])
        assert len(lines) >= 1 and lines[-1].startswith("aerec: error: "), (case, lines[-1:])
        assert fragment in lines[-1] and len(lines[-1]) <= 320, (case, lines[-1][:400])
        assert not any("Usage:" in line for line in lines), case
    assert (tmp_path / "foreign" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / "foreign").iterdir()) == ["notes.txt"]


def test_every_option_of_every_command_has_help() -> None:
    import click

    from aerec.cli import group

    def options(command: click.Command, name: str) -> list[str]:
        if isinstance(command, click.Group):
            return [o for n, c in command.commands.items() for o in options(c, f"{name} {n}")]
        return [
            f"{name} {param.opts[0]}"
            for param in command.params
            if isinstance(param, click.Option) and not param.hidden and not param.help
        ]

    assert options(group, "aerec") == []


def test_the_ray_note_is_only_where_the_engine_is() -> None:
    for command, has_engine in (("score-all", True), ("train-model", False), ("retrain", False)):
        result = run_aerec(command, "--help")
        assert ("--engine ray" in result.stdout) is has_engine, command


def test_show_recs_reads_partitioned_and_published_tables(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    from conftest import nightly_run, score_table

    manifest = score_table(tiny_model, tiny_data[0], tmp_path / "parts", parts=3, device="cpu")
    nightly_run(tiny_model, tiny_data[0], tmp_path / "nightly", device="cpu")
    for recs in (tmp_path / "parts", tmp_path / "nightly"):
        result = run_aerec("show-recs", "--recs", str(recs), "--users", "2")
        assert result.returncode == 0, result.stderr
        assert f"{manifest['rows']:,} rows for {manifest['users']:,} users" in result.stdout
        assert result.stdout.count("\nuser ") == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_aerec("show-recs", "--recs", str(empty))
    assert result.returncode == 2 and "a directory without a table" in result.stderr


def test_evaluate_reads_the_split_from_the_checkpoint(
    tiny_checkpoint: Path, tiny_data: tuple[Path, Path]
) -> None:
    from aerec.train.pipeline import evaluate_checkpoint

    recorded = evaluate_checkpoint(tiny_checkpoint, tiny_data[0], baselines=False)
    given = evaluate_checkpoint(
        tiny_checkpoint, tiny_data[0], "user-temporal:0.2", seed=1, baselines=False
    )
    assert recorded == given


def test_the_readme_command_table_lists_every_option() -> None:
    """Each command's row of README's command table names every option it takes (the
    logging options, common to all, are described once below the table)."""
    import click

    from aerec.cli import group

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    common = {"--help", "--verbose", "--log-format", "--version"}
    missing = []
    for name, command in group.commands.items():
        row = next((r for r in rows if re.match(rf"\| `(aerec )?{name}\b", r)), None)
        assert row is not None, f"no README row for {name}"
        cell = re.split(r"(?<!\\)\|", row)[1]  # the first cell; \\| is a pipe inside it
        for param in command.params:
            if isinstance(param, click.Option):
                flag = max(param.opts, key=len)
                if flag not in common and flag not in cell:
                    missing.append(f"{name} {flag}")
    assert missing == []


def test_the_workflow_on_ml_latest_small_prints_no_third_party_warning(tmp_path: Path) -> None:
    """train-model (without its baselines, minutes on this data), export-onnx, score-all,
    nightly and status on ml-latest-small: every line on stderr is aerec's own log (no
    library's warning or deprecation notice)."""
    ratings = str(shared_file("ml-latest-small/ratings.csv"))
    checkpoint, model = str(tmp_path / "checkpoint"), str(tmp_path / "model.onnx")
    # two epochs are close to a popularity list: the item-share gate would refuse it
    scoring = ("--model", model, "--ratings", ratings, "--max-item-share", "1")
    steps = [
        (
            "train-model",
            "--ratings",
            ratings,
            "--out",
            checkpoint,
            "--epochs",
            "2",
            "--no-baselines",
        ),
        ("export-onnx", "--checkpoint", checkpoint, "--out", model, "--k", "10"),
        ("score-all", *scoring, "--out", str(tmp_path / "r.parquet")),
        ("nightly", *scoring, "--out-dir", str(tmp_path / "recs")),
        ("status", str(tmp_path / "recs")),
    ]
    own = re.compile(r"\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) aerec[.:]")
    for step in steps:
        result = run_aerec(*step)
        assert result.returncode == 0, (step[0], result.stderr[-2000:])
        foreign = [line for line in result.stderr.splitlines() if not own.match(line)]
        assert foreign == [], step[0]
