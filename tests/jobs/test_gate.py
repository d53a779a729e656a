"""The retrain gate's held-out slice: the evaluation's own positive threshold."""

import polars as pl

from aerec.data.split import Split
from aerec.jobs.gate import gate_threshold, held_out


def ratings(rows: list[tuple[int, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Float64}, orient="row"
    )


def test_implicit_data_has_positives_in_the_gate() -> None:
    """All-1 ratings: every held-out rating is a positive (a fixed 4 would find none)."""
    train = ratings([(1, 10, 1.0), (1, 11, 1.0), (2, 10, 1.0), (3, 12, 1.0)])
    test = ratings([(1, 12, 1.0), (2, 11, 1.0), (2, 12, 1.0)])
    split = Split("random:0.2", train, test, test.head(0))
    inputs, truth = held_out(split)
    assert gate_threshold(split) == 1.0
    assert truth.sort("user_id", "item_id").rows() == test.sort("user_id", "item_id").rows()
    assert sorted(inputs["user_id"].unique().to_list()) == [1, 2]


def test_explicit_data_keeps_the_threshold_of_four() -> None:
    train = ratings([(1, 10, 5.0), (2, 10, 3.0)])
    test = ratings([(1, 11, 4.0), (1, 12, 3.5), (2, 11, 2.0)])
    split = Split("random:0.2", train, test, test.head(0))
    _, truth = held_out(split)
    assert gate_threshold(split) == 4.0
    assert truth.rows() == [(1, 11, 4.0)]
