from pathlib import Path

import numpy as np
import polars as pl
import pytest

from aerec.data import synth
from aerec.data.readers import read_movies, read_ratings
from aerec.data.synth import SynthConfig, generate, write_synthetic
from aerec.errors import InputError

CONFIG = SynthConfig(users=300, items=400, ratings=12_000, seed=11)


def test_exact_size_and_determinism() -> None:
    ratings, movies = generate(CONFIG)
    assert ratings.height == 12_000
    assert ratings.select(pl.struct("user_id", "item_id").n_unique()).item() == 12_000
    assert movies.height == 400
    again, _ = generate(CONFIG)
    assert ratings.equals(again)
    other, _ = generate(SynthConfig(users=300, items=400, ratings=12_000, seed=12))
    assert not ratings.equals(other)


def test_movielens_like_shape() -> None:
    ratings, movies = generate(CONFIG)
    assert set(ratings["rating"].unique().to_list()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.0 < ratings["rating"].mean() < 4.0
    per_item = np.sort(ratings.group_by("item_id").len()["len"].to_numpy())[::-1]
    assert per_item[: len(per_item) // 10].sum() > 0.3 * ratings.height  # a popular head
    per_user = ratings.group_by("user_id").len()["len"]
    assert per_user.max() > 3 * per_user.median()  # a few heavy users
    assert set(ratings["item_id"]) <= set(movies["item_id"])
    assert movies["title"].str.contains(r"\(\d{4}\)$").all()


def test_half_stars() -> None:
    ratings, _ = generate(SynthConfig(users=50, items=60, ratings=900, seed=1, half_stars=True))
    values = set(ratings["rating"].unique().to_list())
    assert values <= {x / 2 for x in range(1, 11)} and 3.5 in values


@pytest.mark.parametrize("name", ["r.parquet", "r.csv", "ratings.csv", "ratings.dat", "u.data"])
def test_every_layout_round_trips(tmp_path: Path, name: str) -> None:
    small = SynthConfig(users=40, items=30, ratings=400, seed=2)
    ratings_path, movies_path = write_synthetic(small, tmp_path / name)
    expected, movies = generate(small)
    assert (
        read_ratings(ratings_path)
        .sort("user_id", "item_id")
        .equals(expected.sort("user_id", "item_id"))
    )
    assert read_movies(movies_path).equals(movies)


def test_impossible_request() -> None:
    with pytest.raises(InputError, match="exceed half"):
        generate(SynthConfig(users=3, items=3, ratings=9))


def _top_genre_share(ratings: pl.DataFrame, movies: pl.DataFrame) -> float:
    main_genre = movies.select("item_id", pl.col("genres").str.split("|").list.first())
    per_user = (
        ratings.join(main_genre, on="item_id")
        .group_by("user_id", "genres")
        .len()
        .group_by("user_id")
        .agg((pl.col("len").max() / pl.col("len").sum()).alias("share"))
    )
    return float(per_user["share"].mean())


def test_what_users_rate_follows_their_taste(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users rate more items of their taste cluster than popularity alone would give."""
    with_taste = _top_genre_share(*generate(CONFIG))
    monkeypatch.setattr(synth, "TASTE_SHARE", 0.0)
    without = _top_genre_share(*generate(CONFIG))
    assert with_taste > without + 0.1
