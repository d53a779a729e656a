"""The health tally: exact exposure counts, a sample that is the same users whatever the
order and split of the rows, and a round trip through a Ray actor's record."""

from __future__ import annotations

import numpy as np
import polars as pl

from aerec.contracts import RECS_SCHEMA, mix64
from aerec.io.tally import Tally


def recs(lists: dict[int, list[int]]) -> pl.DataFrame:
    """Rows of the given users' lists, ranked in order, scores 1/rank."""
    rows = [
        (user, rank, item, 1.0 / rank, "model")
        for user, items in lists.items()
        for rank, item in enumerate(items, 1)
    ]
    return pl.DataFrame(rows, schema=RECS_SCHEMA, orient="row")


def tally_of(frames: list[pl.DataFrame], sample_users: int = 1000) -> Tally:
    tally = Tally(sample_users)
    for frame in frames:
        tally.observe(frame)
    return tally


def test_exposure_counts_the_lists_that_hold_each_item() -> None:
    tally = tally_of([recs({1: [10, 20], 2: [20, 30]}), recs({3: [20, 10]})])
    items, counts = tally.exposure()
    assert items.tolist() == [10, 20, 30] and counts.tolist() == [2, 3, 1]
    assert tally.rows == 6
    assert tally.sample_is_complete()
    assert tally.sample()["user_id"].unique().sort().to_list() == [1, 2, 3]


def test_the_sample_is_the_users_of_smallest_hash_however_rows_arrive() -> None:
    lists = {user: [user % 7, 100 + user % 5] for user in range(1, 301)}
    users = np.array(sorted(lists))
    smallest = set(users[np.argsort(mix64(users))[:25]].tolist())
    forward = tally_of([recs({u: lists[u]}) for u in users], sample_users=25)
    shuffled = np.random.default_rng(1).permutation(users)
    halves = [
        tally_of([recs({int(u): lists[int(u)]}) for u in half], 25)
        for half in np.array_split(shuffled, 3)
    ]
    merged = Tally(25)
    for half in halves:
        merged.merge(half)
    for tally in (forward, merged):
        assert set(tally.sample()["user_id"].to_list()) == smallest
        assert not tally.sample_is_complete()
        assert tally.sample().height == 50  # both rows of each sampled user
    assert forward.sample().equals(merged.sample())
    assert [a.tolist() for a in forward.exposure()] == [b.tolist() for b in merged.exposure()]
    assert merged.rows == forward.rows == 600


def test_a_tally_survives_the_round_trip_through_bytes() -> None:
    tally = tally_of([recs({1: [10, 20], 2: [20, 30]})])
    again = Tally.from_bytes(*tally.to_bytes())
    assert again.rows == tally.rows
    assert again.sample().equals(tally.sample())
    assert [a.tolist() for a in again.exposure()] == [a.tolist() for a in tally.exposure()]


def test_exposure_counts_only_the_lists_the_model_ranked() -> None:
    """The popularity fallback's lists (the same for every cold user by design) are in the
    sample but not in the exposure figures."""
    fallback = recs({2: [10, 30], 3: [10, 30]}).with_columns(source=pl.lit("popularity"))
    tally = tally_of([pl.concat([recs({1: [10, 20]}), fallback])])
    items, counts = tally.exposure()
    assert items.tolist() == [10, 20] and counts.tolist() == [1, 1]
    assert (tally.rows, tally.users) == (2, 1)
    assert sorted(tally.sample()["user_id"].unique().to_list()) == [1, 2, 3]
