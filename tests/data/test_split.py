from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import shared_file

from aerec.data.split import SplitSpec, load_split, split_frame
from aerec.data.synth import SynthConfig, generate
from aerec.errors import InputError


@pytest.fixture(scope="module")
def ratings() -> pl.DataFrame:
    return generate(SynthConfig(users=200, items=150, ratings=5000, seed=3))[0]


def test_temporal_098_reproduces_the_first_seed() -> None:
    split = load_split(shared_file("ml-latest-small/ratings.csv"), "temporal:0.98")
    stats = split.stats()
    assert stats["train"] == {"ratings": 98_819, "users": 595, "items": 9_559}
    assert (stats["test"]["ratings"], stats["test"]["users"]) == (188, 14)
    assert stats["dropped"]["total"] == 1_829


def test_files_split_u1() -> None:
    split = load_split(shared_file("ml-100k/u.data"), "files:u1.base,u1.test")
    assert split.train.height == 80_000
    assert split.test.height + split.cold.height == 20_000
    assert split.cold.height == 32  # items that never occur in u1.base


def _pairs(frame: pl.DataFrame) -> set[tuple[int, int]]:
    return set(frame.select("user_id", "item_id").iter_rows())


@pytest.mark.parametrize("spec", ["random:0.2", "temporal:0.8", "user-temporal:0.25"])
def test_split_invariants(ratings: pl.DataFrame, spec: str) -> None:
    split = split_frame(ratings, spec, seed=4)
    train, test, cold = _pairs(split.train), _pairs(split.test), _pairs(split.cold)
    assert not train & test and not train & cold and not test & cold
    assert train | test | cold == _pairs(ratings)
    assert split.train.height + split.test.height + split.cold.height == ratings.height
    known_users, known_items = set(split.train["user_id"]), set(split.train["item_id"])
    assert set(split.test["user_id"]) <= known_users
    assert set(split.test["item_id"]) <= known_items
    for user, item in cold:
        assert user not in known_users or item not in known_items
    stats = split.stats()
    assert stats["dropped"]["total"] == split.cold.height
    assert stats["train"]["ratings"] == split.train.height


def test_temporal_order_respected(ratings: pl.DataFrame) -> None:
    split = split_frame(ratings, "temporal:0.8")
    later = pl.concat([split.test, split.cold])
    assert split.train["timestamp"].max() < later["timestamp"].min()
    assert later.height == pytest.approx(0.2 * ratings.height, abs=5)


def test_user_temporal_takes_each_users_latest(ratings: pl.DataFrame) -> None:
    split = split_frame(ratings, "user-temporal:0.25")
    later = pl.concat([split.test, split.cold])
    for user, rows in later.group_by("user_id"):
        earlier = split.train.filter(pl.col("user_id") == user[0])
        assert earlier["timestamp"].max() <= rows["timestamp"].min()
    counts = ratings.group_by("user_id").len()
    expected = int(np.floor(counts["len"].to_numpy() * 0.25).sum())
    assert later.height == expected


def test_random_is_seeded(ratings: pl.DataFrame) -> None:
    first = split_frame(ratings, "random:0.1", seed=9)
    again = split_frame(ratings, "random:0.1", seed=9)
    other = split_frame(ratings, "random:0.1", seed=10)
    assert first.test.equals(again.test)
    assert not first.test.equals(other.test)
    assert first.test.height + first.cold.height == 500


@pytest.mark.parametrize("spec", ["random", "random:1.5", "random:x", "bogus:0.1", "files:a"])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(InputError):
        SplitSpec.parse(spec)


def test_temporal_needs_timestamps(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"user_id": [1, 2], "item_id": [1, 1], "rating": [4.0, 3.0], "timestamp": [None, None]},
        schema_overrides={"timestamp": pl.Int64},
    )
    with pytest.raises(InputError, match="needs timestamps"):
        split_frame(frame, "temporal:0.5")


def test_positives_only_keeps_ratings_of_4_up_as_ones() -> None:
    """Both sides keep only ratings >= 4, stored as 1 in the rating's own dtype; a test
    rating of an item with no positive left in train becomes cold."""
    from aerec.data.split import positives_only

    frame = pl.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 2, 1, 2],
            "item_id": [10, 11, 12, 10, 12, 13, 13, 11],
            "rating": [5.0, 4.0, 2.0, 4.5, 1.0, 3.0, 4.0, 5.0],
            "timestamp": [1, 2, 3, 4, 5, 6, 7, 8],
        },
        schema_overrides={"rating": pl.Float32},
    )
    split = split_frame(frame, "temporal:0.75")  # the last two ratings are the test side
    implicit = positives_only(split, 4.0)
    assert implicit.train.sort("user_id", "item_id").rows() == [
        (1, 10, 1.0, 1),
        (1, 11, 1.0, 2),
        (2, 10, 1.0, 4),
    ]
    assert implicit.train.schema["rating"] == pl.Float32
    assert implicit.test.rows() == [(2, 11, 1.0, 8)]
    # item 13's only training rating was a 3: its test rating is cold now
    assert implicit.cold.select("user_id", "item_id").rows() == [(1, 13)]
    assert implicit.spec == "temporal:0.75, ratings >= 4 as 1"
