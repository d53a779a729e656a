"""Incremental nightly runs: only changed users are rescored, and the table equals a full
run's; a model change forces a full run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import assert_same_health, nightly_run

from aerec.contracts import part_bucket
from aerec.data.csr import CsrMatrix
from aerec.data.idmap import IdMap
from aerec.score.incremental import fingerprints
from aerec.score.vectors import ReadCounts, UserVectors


def vectors(rows: list[list[tuple[int, float]]]) -> UserVectors:
    """One user per list of (item column, rating)."""
    users = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    columns = np.array([c for r in rows for c, _ in r])
    ratings = np.array([v for r in rows for _, v in r], dtype=np.float32)
    matrix = CsrMatrix.from_indices(users, columns, ratings, len(rows), 10)
    return UserVectors(IdMap(np.arange(len(rows)) + 1), matrix, 0, 0)


def test_fingerprints_see_the_ratings_not_their_order() -> None:
    prints = fingerprints(
        vectors([[(1, 4.0), (3, 2.5)], [(3, 2.5), (1, 4.0)], [(1, 4.0), (3, 3.0)], [(1, 4.0)]])
    )
    assert prints[0] == prints[1]  # the same ratings given in another order
    assert len({int(p) for p in prints[1:]}) == 3  # another rating, one rating fewer


def test_fingerprints_see_a_change_finer_than_half_a_star() -> None:
    prints = fingerprints(vectors([[(1, 3.0)], [(1, 3.25)], [(1, 3.0001)], [(2, 3.0)]]))
    assert len({int(p) for p in prints}) == 4


def changed_ratings(ratings: Path, out: Path) -> tuple[Path, set[int]]:
    """The ratings with one new rating for 2 users (of 120), one user gone and a new user."""
    frame = pl.read_csv(ratings)
    users = sorted(frame["userId"].unique().to_list())
    gone, touched = users[0], users[5:7]
    extra = []
    for user in touched:
        rated = set(frame.filter(pl.col("userId") == user)["movieId"].to_list())
        item = next(i for i in sorted(frame["movieId"].unique().to_list()) if i not in rated)
        extra.append({"userId": user, "movieId": item, "rating": 5.0, "timestamp": 2**31})
    newcomer = max(users) + 1
    for item in frame["movieId"].unique().sort().head(5).to_list():
        extra.append({"userId": newcomer, "movieId": item, "rating": 4.0, "timestamp": 2**31})
    changed = pl.concat(
        [frame.filter(pl.col("userId") != gone), pl.DataFrame(extra, schema=frame.schema)]
    )
    changed.sort("userId", "movieId").write_csv(out)
    return out, {*touched, newcomer}


def assert_rescored(
    manifest: dict[str, Any], previous: dict[str, Any], changed: set[int], run: Path
) -> None:
    """The run reused `previous` and rescored exactly the `changed` users, listed in its
    rescored.parquet."""
    assert manifest["incremental"] == {
        "from_run": previous["run"],
        "rescored_users": len(changed),
        "rescored_file": "rescored.parquet",
    }
    assert pl.read_parquet(run / "rescored.parquet")["user_id"].to_list() == sorted(changed)


def table(directory: Path) -> pl.DataFrame:
    return pl.read_parquet(directory / "current" / "recs" / "*.parquet").sort("user_id", "rank")


def assert_equal_tables(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.select("user_id", "rank", "item_id").equals(
        want.select("user_id", "rank", "item_id")
    )
    assert np.abs(got["score"].to_numpy() - want["score"].to_numpy()).max() <= 1e-5


def test_incremental_run_rescores_only_changed_users_and_equals_a_full_run(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "recs"
    first = nightly_run(tiny_model, tiny_data[0], out, device="cpu", parts=4, incremental=True)
    assert "incremental" not in first  # nothing published before: a full run
    ratings, changed = changed_ratings(tiny_data[0], tmp_path / "ratings.csv")
    second = nightly_run(tiny_model, ratings, out, device="cpu", incremental=True)
    assert_rescored(second, first, changed, out / "current")
    assert second["partitioning"]["parts"] == 4  # taken from the published run
    full = tmp_path / "full"
    whole = nightly_run(tiny_model, ratings, full, device="cpu", parts=4)
    assert_equal_tables(table(out), table(full))
    assert_same_health(second["health"], whole["health"])
    churn = second["health"]["churn"]
    assert (churn["users_added"], churn["users_gone"], churn["exact"]) == (1, 1, True)
    manifest = json.loads((out / "current" / "manifest.json").read_text())
    assert [part_bucket(p["file"]) for p in manifest["parts"]] == [
        part_bucket(p["file"])
        for p in json.loads((full / "current" / "manifest.json").read_text())["parts"]
    ]
    assert not (out / "current" / ".fresh").exists()


def test_a_model_change_forces_a_full_run(
    tiny_model: Path,
    tiny_checkpoint: Path,
    tiny_data: tuple[Path, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from aerec.export.onnx_export import export_onnx

    other = tmp_path / "other.onnx"
    export_onnx(tiny_checkpoint, other, k=4)  # the same network, another k: another model
    out = tmp_path / "recs"
    nightly_run(tiny_model, tiny_data[0], out, device="cpu", parts=4)
    with caplog.at_level("INFO"):
        second = nightly_run(other, tiny_data[0], out, device="cpu", incremental=True)
    assert "incremental" not in second
    assert "full run: the model changed, k changed" in caplog.text
    full = tmp_path / "full"
    nightly_run(other, tiny_data[0], full, device="cpu", parts=4)
    assert_equal_tables(table(out), table(full))


def tamper(run: Path, how: str) -> str:
    """Damage one file of a published run as a disk, an operator or a bad copy might."""
    parts = sorted((run / "recs").glob("part-*.parquet"))
    victim, other = parts[0], parts[1]
    prints = run / "_users" / f"{victim.name[:10]}.parquet"
    if how == "deleted":
        victim.unlink()
    elif how == "another-parts-bytes":
        victim.write_bytes(other.read_bytes())
    elif how == "truncated":
        victim.write_bytes(victim.read_bytes()[:100])
    elif how == "fingerprints-garbage":
        prints.write_bytes(b"not parquet")
    return victim.name[:10]  # part-NNNNN: the damaged part


@pytest.mark.parametrize(
    "how", ["deleted", "another-parts-bytes", "truncated", "fingerprints-garbage"]
)
def test_a_reused_file_that_fails_its_check_is_rescored_in_full(
    how: str,
    tiny_model: Path,
    tiny_data: tuple[Path, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "recs"
    first = nightly_run(tiny_model, tiny_data[0], out, device="cpu", parts=4, incremental=True)
    name = tamper(out / "runs" / first["run"], how)
    damaged = next(p for p in first["parts"] if p["file"].startswith(name))
    ratings, _ = changed_ratings(tiny_data[0], tmp_path / "ratings.csv")
    with caplog.at_level("WARNING"):
        second = nightly_run(tiny_model, ratings, out, device="cpu", incremental=True)
    assert f"/{name}" in caplog.text and "rescored in full" in caplog.text
    assert second["incremental"]["rescored_users"] >= damaged["users"]
    full = tmp_path / "full"
    whole = nightly_run(tiny_model, ratings, full, device="cpu", parts=4)
    assert_equal_tables(table(out), table(full))
    assert_same_health(second["health"], whole["health"])
    churn = second["health"]["churn"]
    assert (churn["users_added"], churn["users_gone"], churn["exact"]) == (1, 1, True)
    assert second["users"] == second["users_read"] - second["users_without_candidates"]


def test_an_unreadable_previous_run_means_a_full_run_not_a_failure(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "recs"
    first = nightly_run(tiny_model, tiny_data[0], out, device="cpu", parts=4, incremental=True)
    (out / "runs" / first["run"] / "manifest.json").write_text("{not json")
    for _ in range(2):  # and the run after it reuses the good run
        latest = nightly_run(tiny_model, tiny_data[0], out, device="cpu", incremental=True)
    assert latest["incremental"]["rescored_users"] == 0


def test_a_previous_table_of_another_schema_is_not_reused(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Parts of schema version 1 (no source column) cannot be merged with version 2's."""
    caplog.set_level("INFO", logger="aerec")
    out = tmp_path / "recs"
    first = nightly_run(tiny_model, tiny_data[0], out, device="cpu", parts=4, incremental=True)
    path = out / "runs" / first["run"] / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": "1"}))
    second = nightly_run(tiny_model, tiny_data[0], out, device="cpu", incremental=True)
    assert "incremental" not in second
    assert "full run: the table's schema changed" in caplog.text


def test_a_table_missing_users_is_never_published(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge that loses users (any future bug) is caught by the coverage check."""
    from aerec.errors import AerecError
    from aerec.score.engines import local

    out = tmp_path / "recs"
    first = nightly_run(tiny_model, tiny_data[0], out, device="cpu", parts=4, incremental=True)
    real = local.merged_part
    monkeypatch.setattr(local, "merged_part", lambda *a: real(*a).slice(10))
    with pytest.raises(AerecError, match="were read with an item left to recommend"):
        nightly_run(tiny_model, tiny_data[0], out, device="cpu", incremental=True)
    assert os.readlink(out / "current") == f"runs/{first['run']}"
    assert sorted(p.name for p in (out / "runs").iterdir()) == [first["run"]]


def test_a_user_who_rated_every_item_is_counted_not_missing(tmp_path: Path) -> None:
    counts = ReadCounts.of(vectors([[(c, 4.0) for c in range(10)], [(1, 4.0)]]))
    assert (counts.users, counts.users_without_candidates) == (2, 1)


def test_the_log_says_how_many_users_were_rescored(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="aerec")
    out = tmp_path / "recs"
    nightly_run(tiny_model, tiny_data[0], out, device="cpu", parts=4, incremental=True)
    caplog.clear()
    again = nightly_run(tiny_model, tiny_data[0], out, device="cpu", incremental=True)
    assert again["incremental"]["rescored_users"] == 0
    assert f"read {again['users_read']} users in" in caplog.text
    assert "0 of them rescored, the rest reused" in caplog.text
