"""The Ray engine: same rows as the single-node scorer, the partitioned-table contract, a
worker killed mid-run, and a failed run leaving the published dataset untouched."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest
from conftest import (
    assert_same_health,
    big_ratings,
    nightly_run,
    published_state,
    score_table,
    shared_file,
)

from aerec.contracts import ATTEMPTS_FILE, USERS_DIR, part_bucket, user_bucket
from aerec.errors import InputError
from aerec.io.digest import file_sha256
from aerec.score.engines import ray as ray_engine
from aerec.score.engines.ray import PartScorer, RayOptions

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'aerec[ray]')")
ONE_ACTOR = RayOptions(concurrency=1)  # the test cluster has 2 CPUs: one actor, one for reads


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local 2-CPU Ray cluster on loopback for this module's tests."""
    ray.init(
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        log_to_driver=False,
        # workers unpickle this module's DyingScorer: they need tests/ on their path
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}},
    )
    yield
    ray.shutdown()


def as_parquet(ratings: Path, out: Path, pieces: int = 1) -> Path:
    """The ratings as canonical Parquet: one file, or a directory of `pieces` parts."""
    frame = pl.read_csv(ratings).rename({"userId": "user_id", "movieId": "item_id"})
    if pieces == 1:
        frame.write_parquet(out)
        return out
    out.mkdir()
    for number, piece in enumerate(
        frame.sample(fraction=1.0, seed=3, shuffle=True).iter_slices(-(-frame.height // pieces))
    ):
        piece.write_parquet(out / f"ratings-{number}.parquet")
    return out


def assert_same_rows(single: Path, parts: Path) -> None:
    """The same users, ranks and items; scores within 1e-5 (`single` a file, or a local
    partitioned run)."""
    if single.is_dir():
        want = pl.read_parquet(single / "recs" / "*.parquet").sort("user_id", "rank")
    else:
        want = pl.read_parquet(single)
    got = pl.read_parquet(parts / "recs" / "*.parquet").sort("user_id", "rank")
    assert got.select("user_id", "rank", "item_id", "source").equals(
        want.select("user_id", "rank", "item_id", "source")
    )
    assert np.abs(got["score"].to_numpy() - want["score"].to_numpy()).max() <= 1e-5


def assert_partitioned_contract(directory: Path, manifest: dict[str, Any]) -> None:
    """Each listed part exists with its sha256, holds only its bucket's users sorted by
    user and rank, and every user is in exactly one part; DuckDB and Polars read it."""
    parts = manifest["partitioning"]["parts"]
    users: list[int] = []
    for record in manifest["parts"]:
        path = directory / manifest["table"] / record["file"]
        assert file_sha256(path) == record["sha256"]
        frame = pl.read_parquet(path)
        assert frame.equals(frame.sort("user_id", "rank")) and frame.height == record["rows"]
        bucket = part_bucket(record["file"])
        assert set(user_bucket(frame["user_id"].to_numpy(), parts)) == {bucket}
        users += frame["user_id"].unique().to_list()
    assert len(users) == len(set(users)) == manifest["users"]
    glob = str(directory / "recs" / "*.parquet")
    count = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()
    assert count == (manifest["rows"],)
    assert pl.scan_parquet(glob).select(pl.len()).collect().item() == manifest["rows"]


def test_ray_equals_single_node_on_synthetic_data(
    cluster: None, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    single = tmp_path / "single.parquet"
    score_table(tiny_model, tiny_data[0], single, device="cpu")
    ratings = as_parquet(tiny_data[0], tmp_path / "ratings", pieces=3)
    out = tmp_path / "ray"
    manifest = score_table(
        tiny_model, ratings, out, device="cpu", parts=4, engine="ray", ray=ONE_ACTOR
    )
    assert_same_rows(single, out)
    assert_partitioned_contract(out, dict(manifest))
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert (out / "_SUCCESS").exists()
    local = tmp_path / "local"
    local_manifest = score_table(tiny_model, tiny_data[0], local, device="cpu", parts=4)
    assert [part_bucket(p["file"]) for p in local_manifest["parts"]] == [
        part_bucket(p["file"]) for p in manifest["parts"]
    ]
    assert_same_rows(single, local)
    assert_same_health(manifest["health"], local_manifest["health"])
    assert_same_health(
        manifest["health"],
        json.loads((single.parent / "single.manifest.json").read_text())["health"],
    )


def test_ray_equals_single_node_on_ml100k(cluster: None, tmp_path: Path) -> None:
    from aerec.export.onnx_export import export_onnx
    from aerec.train.pipeline import TrainOptions, train_model

    data = shared_file("ml-100k/u.data")
    train_model(
        data,
        tmp_path / "ckpt",
        "files:u1.base,u1.test",
        TrainOptions(epochs=3, device="cpu", baselines=False),
    )
    model = tmp_path / "m.onnx"
    export_onnx(tmp_path / "ckpt", model, k=10)
    single = tmp_path / "single.parquet"
    score_table(model, data, single, device="cpu")
    ratings = tmp_path / "u.parquet"
    pl.read_csv(
        data,
        separator="\t",
        has_header=False,
        new_columns=["user_id", "item_id", "rating", "timestamp"],
    ).write_parquet(ratings)
    out = tmp_path / "ray"
    manifest = score_table(model, ratings, out, device="cpu", parts=8, engine="ray", ray=ONE_ACTOR)
    assert manifest["users"] == 943
    assert_same_rows(single, out)


class DyingScorer(PartScorer):
    """Dies like a killed worker (no clean-up) the first time it meets bucket 2, once."""

    def __call__(self, group: Any) -> dict[str, Any]:
        marker = Path(self.job.table_dir) / ".." / ".." / "died-once"
        if int(group[ray_engine.BUCKET][0].as_py()) == 2 and not marker.exists():
            marker.write_text("")
            os._exit(1)
        return super().__call__(group)


def test_a_worker_killed_mid_run_still_yields_the_exact_table(
    cluster: None,
    tiny_model: Path,
    tiny_data: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    single = tmp_path / "single.parquet"
    score_table(tiny_model, tiny_data[0], single, device="cpu")
    ratings = as_parquet(tiny_data[0], tmp_path / "ratings.parquet")
    monkeypatch.setattr(ray_engine, "PartScorer", DyingScorer)
    out = tmp_path / "ray"
    manifest = score_table(
        tiny_model, ratings, out, device="cpu", parts=4, engine="ray", ray=ONE_ACTOR
    )
    assert (tmp_path / "died-once").exists()  # the worker did die, and Ray retried its task
    assert_same_rows(single, out)
    assert_partitioned_contract(out, dict(manifest))
    assert not list(out.glob(".*"))


def test_a_failed_ray_run_leaves_the_published_dataset(
    cluster: None, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    ratings = as_parquet(tiny_data[0], tmp_path / "ratings.parquet")
    out = tmp_path / "published"
    first = nightly_run(tiny_model, ratings, out, device="cpu", engine="ray", ray=ONE_ACTOR)

    def files() -> dict[Path, bytes]:  # all but the log of attempts
        return {
            p.relative_to(out): p.read_bytes()
            for p in out.rglob("*")
            if p.is_file() and p.name != ATTEMPTS_FILE
        }

    before = files()
    bad = tmp_path / "bad.parquet"
    pl.read_parquet(ratings).with_columns(pl.lit(11.0).alias("rating")).write_parquet(bad)
    with pytest.raises(InputError, match=r"bad\.parquet: rating 11 outside the scale"):
        nightly_run(tiny_model, bad, out, device="cpu", engine="ray", ray=ONE_ACTOR)
    assert files() == before
    assert os.readlink(out / "current") == f"runs/{first['run']}"
    assert_partitioned_contract(out / "current", dict(first))


def test_an_incremental_ray_run_rescores_only_changed_users(
    cluster: None, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    from test_incremental import assert_rescored, changed_ratings

    out = tmp_path / "recs"
    first = nightly_run(
        tiny_model,
        as_parquet(tiny_data[0], tmp_path / "before.parquet"),
        out,
        device="cpu",
        parts=4,
        engine="ray",
        ray=ONE_ACTOR,
        incremental=True,
    )
    assert "incremental" not in first  # nothing was published: a full run
    changed_csv, changed = changed_ratings(tiny_data[0], tmp_path / "changed.csv")
    second = nightly_run(
        tiny_model,
        as_parquet(changed_csv, tmp_path / "after.parquet"),
        out,
        device="cpu",
        engine="ray",
        ray=ONE_ACTOR,
        incremental=True,
    )
    assert_rescored(dict(second), dict(first), changed, out / "current")
    full = tmp_path / "full.parquet"
    score_table(tiny_model, changed_csv, full, device="cpu")
    assert_same_rows(full, out / "current")
    assert_partitioned_contract(out / "current", dict(second))
    whole = json.loads((tmp_path / "full.manifest.json").read_text())["health"]
    assert_same_health(second["health"], whole)
    assert second["health"]["churn"]["users_compared"] > 0


def test_a_ray_run_rescores_a_reused_part_that_fails_its_check(
    cluster: None, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    from test_incremental import changed_ratings, tamper

    out = tmp_path / "recs"
    run = {"device": "cpu", "engine": "ray", "ray": ONE_ACTOR, "incremental": True}
    first = nightly_run(
        tiny_model, as_parquet(tiny_data[0], tmp_path / "before.parquet"), out, parts=4, **run
    )
    name = tamper(out / "runs" / first["run"], "another-parts-bytes")
    damaged = next(p for p in first["parts"] if p["file"].startswith(name))
    changed_csv, _ = changed_ratings(tiny_data[0], tmp_path / "changed.csv")
    second = nightly_run(
        tiny_model, as_parquet(changed_csv, tmp_path / "after.parquet"), out, **run
    )
    assert second["incremental"]["rescored_users"] >= damaged["users"]
    full = tmp_path / "full.parquet"
    score_table(tiny_model, changed_csv, full, device="cpu")
    assert_same_rows(full, out / "current")


def test_ray_reads_exactly_the_files_the_manifest_hashes(
    cluster: None, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """A subfolder (or a hidden file) in a ratings directory is neither read nor hashed."""
    flat = as_parquet(tiny_data[0], tmp_path / "flat", pieces=3)
    nested = tmp_path / "nested"
    nested.mkdir()
    for part in flat.iterdir():
        (nested / part.name).write_bytes(part.read_bytes())
    (nested / "old").mkdir()
    extra = pl.read_parquet(flat / "ratings-0.parquet").with_columns(pl.col("user_id") + 10_000)
    extra.write_parquet(nested / "old" / "ratings-9.parquet")
    extra.write_parquet(nested / ".hidden.parquet")
    runs = [
        score_table(tiny_model, ratings, tmp_path / f"out-{ratings.name}", device="cpu",
                  parts=4, engine="ray", ray=ONE_ACTOR)
        for ratings in (flat, nested)
    ]  # fmt: skip
    assert runs[0]["input"]["sha256"] == runs[1]["input"]["sha256"]
    assert runs[0]["users"] == runs[1]["users"]
    read = pl.read_parquet(tmp_path / "out-nested" / "recs" / "*.parquet")
    assert read["user_id"].max() < 10_000


def test_ray_actors_score_the_model_the_driver_read(
    cluster: None,
    tiny_model: Path,
    tiny_data: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A retrain --keep 1 prunes the model file right after the run read it: the actors
    still score the bytes the driver read (they never open the path)."""
    from aerec.score.session import ModelFile

    single = tmp_path / "single.parquet"
    score_table(tiny_model, tiny_data[0], single, device="cpu")
    model = Path(shutil.copy(tiny_model, tmp_path / "model.onnx"))
    real = ModelFile.read

    def read_then_prune(path: str | Path) -> ModelFile:
        read = real(path)
        Path(path).unlink()
        return read

    monkeypatch.setattr(ModelFile, "read", staticmethod(read_then_prune))
    ratings = as_parquet(tiny_data[0], tmp_path / "ratings.parquet")
    out = tmp_path / "ray"
    score_table(model, ratings, out, device="cpu", parts=4, engine="ray", ray=ONE_ACTOR)
    assert not model.exists()
    assert_same_rows(single, out)


def test_a_file_with_a_mistyped_column_is_named(
    cluster: None, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """One of several files has its ratings as strings: exit 2 naming that file."""
    ratings = as_parquet(tiny_data[0], tmp_path / "ratings", pieces=3)
    bad = ratings / "ratings-1.parquet"
    pl.read_parquet(bad).with_columns(pl.col("rating").cast(pl.String) + "x").write_parquet(bad)
    with pytest.raises(InputError, match=r"ratings-1\.parquet: column has the wrong type"):
        score_table(
            tiny_model, ratings, tmp_path / "out", device="cpu", engine="ray", ray=ONE_ACTOR
        )
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_both_engines_give_the_popularity_fallback_alike(
    cluster: None, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """Two users who rated only items the model does not know get the same fallback rows
    on both engines, counted alike, as is a listed user with no rating at all."""
    frame = pl.read_csv(tiny_data[0])
    cold = pl.DataFrame(
        {"userId": [5001, 5001, 5002], "movieId": [999991, 999992, 999993]}
    ).with_columns(rating=pl.lit(4.0), timestamp=pl.lit(1))
    ratings = tmp_path / "ratings.csv"
    pl.concat([frame, cold.cast(frame.schema)]).write_csv(ratings)  # type: ignore[arg-type]
    listed = tmp_path / "users.txt"  # everyone, and one user with no rating at all
    everyone = pl.read_csv(ratings)["userId"].unique().sort().to_list()
    listed.write_text("\n".join(str(u) for u in [*everyone, 999999]))
    single = tmp_path / "single.parquet"
    local = score_table(tiny_model, ratings, single, device="cpu", users=listed)
    out = tmp_path / "ray"
    parquet = as_parquet(ratings, tmp_path / "ratings.parquet")
    remote = score_table(
        tiny_model, parquet, out, device="cpu", parts=4, engine="ray", ray=ONE_ACTOR, users=listed
    )
    assert_same_rows(single, out)
    assert local["users_fallback"] == remote["users_fallback"] == 2
    assert local["users_not_found"] == remote["users_not_found"] == 1
    table = pl.read_parquet(single)
    assert set(table.filter(pl.col("source") == "popularity")["user_id"]) == {5001, 5002}


def test_ray_takes_the_text_layouts_the_local_engine_takes(
    cluster: None, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """A ratings.csv and the same ratings in ML-100K's u.data layout score on Ray as on
    the local engine; the Parquet copy the workers read is not left in the run."""
    from aerec.data.layouts import layout_for_name
    from aerec.data.readers import read_ratings

    single = tmp_path / "single.parquet"
    score_table(tiny_model, tiny_data[0], single, device="cpu")
    tab = tmp_path / "u.data"
    layout_for_name(tab).write(read_ratings(tiny_data[0]), tab)
    for number, ratings in enumerate((tiny_data[0], tab)):
        out = tmp_path / f"ray-{number}"
        manifest = score_table(
            tiny_model, ratings, out, device="cpu", parts=4, engine="ray", ray=ONE_ACTOR
        )
        assert_same_rows(single, out)
        assert manifest["input"]["sha256"] == file_sha256(ratings)  # the file as given
        assert sorted(p.name for p in out.iterdir()) == [
            "_SUCCESS",
            "health.parquet",
            "manifest.json",
            "recs",
        ]


class ReversingScorer(PartScorer):
    """Gets its bucket's rows in reverse order: Ray Data promises no order within a group."""

    def __call__(self, group: Any) -> dict[str, Any]:
        return super().__call__(group.take(np.arange(group.num_rows)[::-1]))


def test_a_pair_rated_twice_at_one_timestamp_keeps_the_later_files_rating(
    cluster: None,
    tiny_model: Path,
    tiny_data: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forty ratings are repeated in a second file with the same timestamp and another
    rating: whatever order Ray hands a bucket's rows in, the later file's rating is kept,
    as the local engine keeps the later row of the two files concatenated."""
    frame = pl.read_csv(tiny_data[0]).rename({"userId": "user_id", "movieId": "item_id"})
    first, second = frame.slice(0, frame.height // 2), frame.slice(frame.height // 2)
    repeated = first.slice(0, 40).with_columns((5.5 - pl.col("rating")).alias("rating"))
    ratings = tmp_path / "ratings"
    ratings.mkdir()
    first.write_parquet(ratings / "a.parquet")
    pl.concat([second, repeated]).write_parquet(ratings / "b.parquet")
    concatenated = tmp_path / "all.parquet"
    pl.concat([first, second, repeated]).write_parquet(concatenated)
    local = tmp_path / "local"
    score_table(tiny_model, concatenated, local, parts=4, device="cpu", fingerprints=True)
    monkeypatch.setattr(ray_engine, "PartScorer", ReversingScorer)
    out = tmp_path / "ray"
    run = {"device": "cpu", "parts": 4, "engine": "ray", "ray": ONE_ACTOR, "fingerprints": True}
    score_table(tiny_model, ratings, out, **run)
    assert_same_rows(local, out)
    # each user's fingerprint covers the exact ratings kept: equal only if the same were
    assert kept_ratings(out) == kept_ratings(local)


def kept_ratings(table: Path) -> dict[int, bytes]:
    """Each user's fingerprint in a partitioned run's USERS_DIR."""
    prints = pl.read_parquet(table / USERS_DIR / "*.parquet")
    return dict(zip(prints["user_id"].to_list(), prints["fingerprint"].to_list(), strict=True))


def test_a_ray_run_on_a_full_disk_says_errno_28(
    cluster: None, small_disk: Path, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """The workers' part files fill a 1 MiB disk: one line with [Errno 28], exit 1, and
    the published run as it was."""
    out = small_disk / "recs"
    ratings = as_parquet(tiny_data[0], tmp_path / "ratings.parquet")
    nightly_run(tiny_model, ratings, out, device="cpu", engine="ray", ray=ONE_ACTOR)
    before = published_state(out)
    big = tmp_path / "big.parquet"
    pl.read_csv(big_ratings(tiny_model, tmp_path / "big.csv", 60_000)).write_parquet(big)
    with pytest.raises(OSError, match=r"\[Errno 28\] No space left on device"):
        nightly_run(tiny_model, big, out, device="cpu", engine="ray", ray=ONE_ACTOR)
    assert published_state(out) == before
