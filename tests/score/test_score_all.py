import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import big_ratings, score_table

from aerec.data.readers import read_ratings
from aerec.errors import InputError
from aerec.io.digest import file_sha256
from aerec.score.session import open_session


@pytest.fixture(scope="module")
def published(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("recs") / "recs.parquet"
    manifest = score_table(tiny_model, tiny_data[0], out, batch_size=7, device="cpu")
    return out, manifest


def test_schema_sort_and_ranks(published: tuple[Path, dict]) -> None:
    out, _ = published
    recs = pl.read_parquet(out)
    assert recs.schema == pl.Schema(
        {
            "user_id": pl.Int64,
            "rank": pl.Int32,
            "item_id": pl.Int64,
            "score": pl.Float32,
            "source": pl.String,
        }
    )
    assert set(recs["source"]) == {"model"}  # every tiny user rates a known item
    assert recs.equals(recs.sort("user_id", "rank"))
    per_user = recs.group_by("user_id").agg(
        pl.col("rank"), pl.col("item_id").n_unique(), pl.col("score")
    )
    for ranks, distinct, scores in per_user.select("rank", "item_id", "score").iter_rows():
        assert ranks == list(range(1, len(ranks) + 1))
        assert distinct == len(ranks)
        assert scores == sorted(scores, reverse=True)


def test_every_user_scored_and_no_rated_item(
    published: tuple[Path, dict], tiny_data: tuple[Path, Path]
) -> None:
    out, manifest = published
    recs = pl.read_parquet(out)
    ratings = read_ratings(tiny_data[0])
    assert set(recs["user_id"]) == set(ratings["user_id"])
    assert recs.group_by("user_id").len()["len"].to_list() == [5] * manifest["users"]
    overlap = recs.join(ratings, on=["user_id", "item_id"], how="inner")
    assert overlap.height == 0


def test_metadata_manifest_and_success(published: tuple[Path, dict], tiny_model: Path) -> None:
    out, manifest = published
    meta = pl.read_parquet_metadata(out)
    _, info, _ = open_session(tiny_model, "cpu")
    assert meta["aerec.model_version"] == info.version
    assert meta["aerec.k"] == "5"
    assert meta["aerec.schema_version"] == "2"
    assert "aerec.generated_at" in meta
    on_disk = json.loads((out.parent / "recs.manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["sha256"] == file_sha256(out)
    assert manifest["rows"] == pl.read_parquet(out).height
    assert manifest["provider"] == "CPUExecutionProvider"
    assert (out.parent / "recs._SUCCESS").exists()


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_a_reduced_precision_graph_scores_like_the_float_graph(
    published: tuple[Path, dict],
    tiny_checkpoint: Path,
    tiny_data: tuple[Path, Path],
    tmp_path: Path,
    precision: str,
) -> None:
    from aerec.export.onnx_export import export_onnx

    model = tmp_path / f"{precision}.onnx"
    export_onnx(tiny_checkpoint, model, k=5, precision=precision)
    manifest = score_table(model, tiny_data[0], tmp_path / "recs.parquet", device="cpu")
    recs = pl.read_parquet(tmp_path / "recs.parquet")
    floats = pl.read_parquet(published[0])
    assert manifest["users"] == published[1]["users"] and recs.height == floats.height
    ratings = read_ratings(tiny_data[0])
    assert recs.join(ratings, on=["user_id", "item_id"], how="inner").height == 0
    shared = recs.join(floats, on=["user_id", "item_id"], how="inner").height / floats.height
    assert shared >= 0.9


def test_unknown_items_and_users_filter(tiny_model: Path, tmp_path: Path) -> None:
    ratings = tmp_path / "r.csv"
    _, info, _ = open_session(tiny_model, "cpu")
    known = info.items.ids
    ratings.write_text(
        f"user_id,item_id,rating\n1,{known[0]},4\n1,999999,5\n2,999998,3\n3,{known[1]},2\n"
    )
    users = tmp_path / "users.txt"
    users.write_text("user_id\n1\n2\n")
    manifest = score_table(
        tiny_model,
        ratings,
        tmp_path / "recs.parquet",
        device="cpu",
        users=users,
        k=3,
        max_unknown=1.0,  # two of the three listed ratings are of unknown items
        fallback=False,
    )
    recs = pl.read_parquet(tmp_path / "recs.parquet")
    assert set(recs["user_id"]) == {1}  # user 2 knows no item, user 3 is not listed
    assert recs.height == 3 and manifest["k"] == 3
    assert manifest["unknown_item_ratings"] == 2
    assert manifest["users_skipped"] == 1
    assert manifest["users_fallback"] == 0


def test_a_user_without_a_known_item_gets_the_popularity_fallback(
    tiny_model: Path, tmp_path: Path
) -> None:
    """User 2 rated only items the model does not know: the model's training data's three
    most rated items, marked and counted; user 1 is scored by the model."""
    import numpy as np

    _, info, _ = open_session(tiny_model, "cpu")
    assert info.item_counts is not None
    ratings = tmp_path / "ratings.csv"
    known = info.items.ids
    ratings.write_text(
        f"user_id,item_id,rating\n1,{known[0]},4\n2,999998,3\n2,999997,5\n3,{known[1]},2\n"
    )
    manifest = score_table(
        tiny_model, ratings, tmp_path / "recs.parquet", device="cpu", k=3, max_unknown=1.0
    )
    recs = pl.read_parquet(tmp_path / "recs.parquet")
    order = np.argsort(-info.item_counts, kind="stable")[:3]
    fallback = recs.filter(pl.col("user_id") == 2)
    assert fallback["item_id"].to_list() == known[order].tolist()
    assert fallback["score"].to_list() == info.item_counts[order].astype(np.float32).tolist()
    assert set(fallback["source"]) == {"popularity"} and fallback["rank"].to_list() == [1, 2, 3]
    assert set(recs.filter(pl.col("user_id") != 2)["source"]) == {"model"}
    assert (manifest["users_fallback"], manifest["users"]) == (1, 3)
    assert recs.equals(recs.sort("user_id", "rank"))


def test_failed_run_leaves_previous_output(
    published: tuple[Path, dict], tiny_model: Path, tmp_path: Path
) -> None:
    out, _ = published
    before = out.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,rating\n1,2,9\n")
    with pytest.raises(InputError, match="outside the scale"):
        score_table(tiny_model, bad, out, device="cpu")
    assert out.read_bytes() == before
    assert (out.parent / "recs._SUCCESS").exists()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_corrupt_and_foreign_models(tmp_path: Path, tiny_data: tuple[Path, Path]) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(InputError, match="not a loadable ONNX model"):
        score_table(corrupt, tiny_data[0], tmp_path / "r.parquet", device="cpu")
    with pytest.raises(InputError, match="no such model file"):
        score_table(tmp_path / "absent.onnx", tiny_data[0], tmp_path / "r.parquet")
    assert not (tmp_path / "r.parquet").exists()


def test_model_of_another_input_format_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    import onnx

    proto = onnx.load(str(tiny_model))
    for prop in proto.metadata_props:
        if prop.key == "aerec.input_format":
            prop.value = "dense-v0"
    onnx.save(proto, str(tmp_path / "old.onnx"))
    with pytest.raises(InputError, match="reads dense-v0, this aerec reads padded-v1: re-export"):
        open_session(tmp_path / "old.onnx", "cpu")


def test_cuda_request_without_cuda_is_clear(tiny_model: Path) -> None:
    from aerec.score.session import cuda_usable

    if cuda_usable():
        pytest.skip("this host has a usable CUDA provider")
    with pytest.raises(InputError, match="--device cuda"):
        open_session(tiny_model, "cuda")


def test_scoring_imports_no_torch() -> None:
    code = (
        "import sys, aerec.score.pipeline, aerec.score.cli, aerec.data.split, "
        "aerec.data.synth, aerec.data.fetch, aerec.jobs.nightly, aerec.score.engines; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'torch' "
        "or m.startswith(('aerec.train', 'aerec.export'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_metrics_and_cli_import_no_torch() -> None:
    code = (
        "import sys, aerec.train.metrics, aerec.train.baselines, aerec.train.presets, "
        "aerec.cli; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'torch']; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_recommend_one_user(tiny_model: Path, tiny_data: tuple[Path, Path]) -> None:
    from aerec.score.recommend import recommend_user

    ratings = read_ratings(tiny_data[0])
    user = int(ratings["user_id"][0])
    rated, recs = recommend_user(tiny_model, tiny_data[0], tiny_data[1], user, k=3, device="cpu")
    assert recs["rank"].to_list() == [1, 2, 3]
    assert recs["title"].null_count() == 0 and recs["genres"].null_count() == 0
    mine = set(ratings.filter(pl.col("user_id") == user)["item_id"])
    assert not mine & set(recs["item_id"])
    assert rated["rating"].to_list() == sorted(rated["rating"].to_list(), reverse=True)
    with pytest.raises(InputError, match="has no ratings"):
        recommend_user(tiny_model, tiny_data[0], tiny_data[1], -5, device="cpu")


def test_sigterm_while_writing_removes_temporaries_and_publishes_nothing(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """SIGTERM (systemctl stop) once the new table is being written: exit 143, the old
    table, manifest and _SUCCESS as they were, no temporary file or sort folder left."""
    out = tmp_path / "out" / "recs.parquet"
    score_table(tiny_model, tiny_data[0], out, device="cpu")
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    ratings = big_ratings(tiny_model, tmp_path / "big.csv", 60_000)  # not sorted by user
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    command = [sys.executable, "-m", "aerec", "score-all", "--model", str(tiny_model)]
    command += ["--ratings", str(ratings), "--out", str(out), "--device", "cpu"]
    for _ in range(3):  # a run that finished before the signal proves nothing: retry
        run = subprocess.Popen(
            command, stderr=subprocess.PIPE, env={**os.environ, "TMPDIR": str(scratch)}
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and run.poll() is None:
            if any(p.name.endswith(".tmp") for p in out.parent.iterdir()) and any(
                p.name.startswith("aerec-sort-") for p in scratch.iterdir()
            ):
                break
            time.sleep(0.001)
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=60)
        if run.returncode == 143:
            break
        for name, data in before.items():
            (out.parent / name).write_bytes(data)
    else:
        pytest.fail("every run finished before SIGTERM could stop it")
    assert "terminated (SIGTERM)" in stderr.decode().strip().splitlines()[-1]
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
    # (ONNX Runtime leaves a .ses file in TMPDIR on every run, finished or not)
    assert [p.name for p in scratch.iterdir() if p.name.startswith("aerec")] == []


def test_score_all_into_a_directory_writes_a_partitioned_dataset(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """score-all writes what --out names and nothing else: the parts, the manifest and
    _SUCCESS in DIR; runs, `current` and pruning are aerec nightly's."""
    from conftest import run_aerec

    out = tmp_path / "recs"
    args = ["score-all", "--model", str(tiny_model), "--ratings", str(tiny_data[0])]
    args += ["--out", f"{out}/", "--parts", "3", "--device", "cpu"]
    result = run_aerec(*args)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["partitioning"] == {"key": "user_id", "hash": "splitmix64", "parts": 3}
    assert sorted(p.name for p in (out / "recs").iterdir()) == [
        p["file"] for p in manifest["parts"]
    ]
    assert sorted(p.name for p in out.iterdir()) == [
        "_SUCCESS",
        "health.parquet",
        "manifest.json",
        "recs",
    ]
    table = pl.read_parquet(out / "recs" / "*.parquet")
    score_table(tiny_model, tiny_data[0], tmp_path / "one.parquet", device="cpu")
    single = pl.read_parquet(tmp_path / "one.parquet")
    assert table.sort("user_id", "rank").equals(single)
    before = {p: file_sha256(p) for p in out.rglob("*") if p.is_file()}
    again = run_aerec(*args)
    assert again.returncode == 2
    assert "is not empty" in again.stderr and "aerec nightly" in again.stderr
    assert {p: file_sha256(p) for p in out.rglob("*") if p.is_file()} == before


def test_the_ray_engine_refuses_an_unknown_layout_before_starting(
    tiny_model: Path, tmp_path: Path
) -> None:
    ratings = tmp_path / "ratings.txt"
    ratings.write_text("user item rating\n")
    with pytest.raises(InputError, match="unrecognised ratings layout"):
        score_table(tiny_model, ratings, tmp_path / "out", device="cpu", engine="ray")
    assert not (tmp_path / "out").exists()


def test_two_tables_in_one_folder_keep_their_own_manifests(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("\n".join(str(u) for u in range(1, 11)))
    everyone = score_table(tiny_model, tiny_data[0], tmp_path / "all.parquet", device="cpu")
    # a small table beside a big one is not gated against the big one's rows
    few = score_table(tiny_model, tiny_data[0], tmp_path / "few.parquet", device="cpu", users=users)
    assert json.loads((tmp_path / "all.manifest.json").read_text()) == everyone
    assert json.loads((tmp_path / "few.manifest.json").read_text()) == few
    assert (tmp_path / "all._SUCCESS").exists() and (tmp_path / "few._SUCCESS").exists()
    assert few["rows"] < everyone["rows"] // 2


def test_a_graph_that_ranks_rated_items_publishes_nothing(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A graph whose TopK read the unmasked scores: each user's first rated item on top."""
    from aerec.errors import AerecError
    from aerec.score import scorer

    real_run = scorer.BatchScorer.run_graph

    def unmasked(self: Any, feed: dict[str, Any]) -> tuple[Any, Any]:
        scores, items = real_run(self, feed)
        items = items.copy()
        items[:, 0] = self.info.items.ids[feed["columns"][:, 0]]  # a rated item first
        return scores, items

    monkeypatch.setattr(scorer.BatchScorer, "run_graph", unmasked)
    out = tmp_path / "out" / "recs.parquet"
    with pytest.raises(AerecError, match="ranked an item the user rated"):
        score_table(tiny_model, tiny_data[0], out, device="cpu")
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_the_manifest_names_the_input_as_given_and_resolved(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    link = tmp_path / "latest.csv"
    link.symlink_to(tiny_data[0])
    manifest = score_table(tiny_model, link, tmp_path / "recs.parquet", device="cpu")
    assert manifest["input"]["path"] == str(link)
    assert manifest["input"]["resolved"] == str(tiny_data[0].resolve())
    assert manifest["input"]["sha256"] == file_sha256(tiny_data[0])


def test_listed_users_without_ratings_are_reported(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("1\n2\n777777\n888888\n2\n")
    manifest = score_table(
        tiny_model, tiny_data[0], tmp_path / "r.parquet", device="cpu", users=users
    )
    assert manifest["users_not_found"] == 2 and manifest["users"] == 2
    assert f"2 of the 4 users listed in {users} have no rating: 777777, 888888" in caplog.text
    everyone = score_table(tiny_model, tiny_data[0], tmp_path / "all.parquet", device="cpu")
    assert "users_not_found" not in everyone  # only a --users run lists users
