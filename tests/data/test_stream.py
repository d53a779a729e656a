"""Ratings streamed as whole users in user order, sorted or not, on tiny known data."""

import os
import subprocess
import tempfile
from pathlib import Path

import polars as pl
import pytest

from aerec.data.readers import read_rating_chunks, read_ratings
from aerec.data.stream import (
    NotSortedByUser,
    complete_users,
    remove_abandoned_sorts,
    sort_on_disk,
)

SCHEMA = {"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Float32, "timestamp": pl.Int64}


def frame(users: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"user_id": users, "item_id": range(len(users)), "rating": 4.0, "timestamp": 0},
        schema=SCHEMA,
    )


def test_users_split_across_chunks_are_joined() -> None:
    chunks = [frame([1, 1, 2]), frame([2, 2]), frame([2, 3, 4]), frame([4])]
    groups = [g["user_id"].to_list() for g in complete_users(chunks)]
    assert groups == [[1, 1], [2, 2, 2, 2, 3], [4, 4]]  # every group ends where a user ends


def test_user_ids_going_down_raise() -> None:
    with pytest.raises(NotSortedByUser):
        list(complete_users([frame([1, 3, 2])]))
    with pytest.raises(NotSortedByUser):
        list(complete_users([frame([1, 5]), frame([4])]))


def test_chunked_read_names_the_line_of_a_bad_rating(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,rating\n" + "1,1,4\n" * 5 + "1,2,9\n")
    with pytest.raises(Exception, match=r"r.csv:7: rating 9 outside the scale"):
        list(read_rating_chunks(path, chunk_rows=2))


LAYOUTS = {
    "r.csv": ("user_id,item_id,rating,timestamp\n", "{u},{i},{r},{t}"),
    "ratings.csv": ("userId,movieId,rating,timestamp\n", "{u},{i},{r},{t}"),
    "u.data": ("", "{u}\t{i}\t{r}\t{t}"),
    "ratings.dat": ("", "{u}::{i}::{r}::{t}"),
}


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize("ending", ["\n", ""])
@pytest.mark.parametrize("tail", [1 << 16, 4])  # 4: shorter than a line, found further on
def test_text_files_are_read_in_blocks_of_whole_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, ending: str, tail: int
) -> None:
    import aerec.data.readers as readers

    header, line = LAYOUTS[name]
    rows = [line.format(u=u // 4 + 1, i=u % 97 + 10, r=1 + u % 5, t=1000 + u) for u in range(60)]
    path = tmp_path / name
    path.write_text(header + "\n".join(rows) + ending)
    monkeypatch.setattr(readers, "SAMPLE_BYTES", 40)  # blocks of about 3 lines
    monkeypatch.setattr(readers, "TAIL_BYTES", tail)
    chunks = list(read_rating_chunks(path, chunk_rows=3))
    assert len(chunks) >= 10 and max(c.height for c in chunks) <= 8
    assert pl.concat(chunks).equals(read_ratings(path, dedupe=False))


def test_a_bad_line_in_a_later_block_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aerec.data.readers as readers

    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,rating\n" + "1,1,4\n" * 40 + "1,2,9\n" + "1,3,4\n" * 5)
    monkeypatch.setattr(readers, "SAMPLE_BYTES", 20)
    with pytest.raises(Exception, match=r"r.csv:42: rating 9 outside the scale"):
        list(read_rating_chunks(path, chunk_rows=2))


def test_sort_on_disk_yields_every_rating_by_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.csv"
    rows = [(u, i, float(1 + (u + i) % 5), u * 100 + i) for i in range(7) for u in (9, 2, 5, 7, 1)]
    pl.DataFrame(rows, schema=SCHEMA, orient="row").write_csv(path)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    chunks = sort_on_disk(path, chunk_rows=6)
    first = next(chunks)
    assert [p.name[:11] for p in temporary.iterdir()] == ["aerec-sort-"]  # in use
    groups = list(complete_users([first, *chunks]))
    assert list(temporary.iterdir()) == []  # the bucket directory is gone
    streamed = pl.concat(groups)
    assert streamed["user_id"].is_sorted()
    assert all(g["user_id"].n_unique() == len(set(g["user_id"])) for g in groups)
    users = [u for g in groups for u in g["user_id"].unique(maintain_order=True).to_list()]
    assert users == sorted(set(users))  # each user in exactly one group
    expected = read_ratings(path).sort("user_id", maintain_order=True)
    assert streamed.equals(expected)


def test_what_a_killed_sort_left_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    abandoned = tmp_path / f"aerec-sort-{dead.pid}-x1"
    running = tmp_path / f"aerec-sort-{os.getpid()}-x2"
    theirs = tmp_path / "aerec-sort-notes"
    for folder in (abandoned, running, theirs):
        (folder / "000000").mkdir(parents=True)
    assert remove_abandoned_sorts(tmp_path) == [abandoned.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, theirs.name])
