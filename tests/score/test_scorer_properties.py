"""Property-based tests of the scorer's output invariants on random users."""

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aerec.score.scorer import BatchScorer, score_users
from aerec.score.vectors import build_user_vectors


@pytest.fixture(scope="module")
def scorer(tiny_model: Path) -> BatchScorer:
    return BatchScorer(tiny_model, "cpu")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), batch=st.integers(1, 9))
def test_output_invariants(scorer: BatchScorer, data: st.DataObject, batch: int) -> None:
    ids = scorer.info.items.ids.tolist()
    users = data.draw(
        st.dictionaries(
            st.integers(1, 10**9),
            st.lists(st.sampled_from(ids), min_size=1, max_size=len(ids), unique=True),
            min_size=1,
            max_size=12,
        )
    )
    ratings = data.draw(st.sampled_from([1.0, 3.5, 5.0]))
    frame = pl.DataFrame(
        [(u, i, ratings, 0) for u, items in users.items() for i in items],
        schema={
            "user_id": pl.Int64,
            "item_id": pl.Int64,
            "rating": pl.Float32,
            "timestamp": pl.Int64,
        },
        orient="row",
    )
    recs = score_users(scorer, build_user_vectors(frame, scorer.info.items), batch)
    k = scorer.info.k
    for (user,), rows in recs.group_by("user_id"):
        rated = set(users[user])
        assert rows["rank"].to_list() == list(range(1, rows.height + 1))
        assert rows.height == min(k, len(ids) - len(rated))
        assert rows["item_id"].n_unique() == rows.height
        assert not rated & set(rows["item_id"].to_list())
        scores = rows["score"].to_list()
        assert scores == sorted(scores, reverse=True)
    expected = {u for u, items in users.items() if len(items) < len(ids)}
    assert set(recs["user_id"].to_list()) == expected
    assert recs.equals(recs.sort("user_id", "rank"))
