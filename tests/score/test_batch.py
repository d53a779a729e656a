"""The per-batch pieces on exact small examples: padding, batching by length, rows."""

import numpy as np
import pytest

from aerec.contracts import RECS_SCHEMA
from aerec.data.csr import CsrMatrix
from aerec.data.idmap import IdMap
from aerec.errors import InputError
from aerec.score.batch import UserBatch, graph_feed, score_batch, topk_rows
from aerec.score.scorer import length_batches
from aerec.score.vectors import UserVectors


def matrix(rows: list[list[tuple[int, float]]], n_cols: int = 10) -> CsrMatrix:
    coordinates = [(r, c, v) for r, entries in enumerate(rows) for c, v in entries]
    r, c, v = (np.array(x) for x in zip(*coordinates, strict=True))
    return CsrMatrix.from_indices(r, c, v, len(rows), n_cols)


def test_feed_pads_with_a_rated_column_and_zero() -> None:
    batch = UserBatch(np.array([7, 9]), matrix([[(2, 4.0), (5, 3.0), (8, 1.0)], [(4, 5.0)]]))
    feed = graph_feed(batch)
    assert feed["columns"].tolist() == [[2, 5, 8], [4, 4, 4]]
    assert feed["values"].tolist() == [[4.0, 3.0, 1.0], [5.0, 0.0, 0.0]]


def test_length_batches_group_by_count_within_the_budget() -> None:
    counts = [1, 5, 1, 2, 5, 1]
    rows = [[(c, 1.0) for c in range(n)] for n in counts]
    vectors = UserVectors(IdMap(np.arange(10, 16)), matrix(rows), 0, 0)
    batches = list(length_batches(vectors, batch_size=3, max_entries=6))
    # by count: users 10, 12, 15 (1 each), then 13 (2) alone since 2 x 5 > 6, then 11, 14
    assert [b.user_ids.tolist() for b in batches] == [[10, 12, 15], [13], [11], [14]]
    assert all(b.rows is not None for b in batches)  # rows of the chunk, not copies of them
    assert all(
        b.ratings.row_counts()[b.rows].tolist() == [counts[u - 10] for u in b.user_ids]
        for b in batches
    )


def test_topk_rows_drop_minus_infinity_and_keep_k() -> None:
    scores = np.array([[0.9, 0.5, -np.inf], [0.7, 0.6, 0.1]], dtype=np.float32)
    items = np.array([[3, 1, 2], [4, 5, 6]])
    rows = topk_rows(np.array([1, 2]), scores, items, k=2)
    assert rows.schema == RECS_SCHEMA
    assert rows["user_id"].to_list() == [1, 1, 2, 2]
    assert rows["rank"].to_list() == [1, 2, 1, 2]
    assert rows["item_id"].to_list() == [3, 1, 4, 5]
    assert rows["score"].to_list() == scores[:, :2].ravel().tolist()
    full = topk_rows(np.array([1, 2]), scores, items)
    assert full.height == 5 and 2 not in full["item_id"].to_list()


def test_take_and_duplicates() -> None:
    m = matrix([[(1, 1.0), (3, 2.0)], [(0, 5.0)], [(2, 4.0), (2, 3.0)]])
    taken = m.take(np.array([2, 0]))
    assert taken.indptr.tolist() == [0, 2, 4]
    assert taken.indices.tolist() == [2, 2, 1, 3] and taken.data.tolist() == [4.0, 3.0, 1.0, 2.0]
    assert m.has_duplicates() and not m.take(np.array([0, 1])).has_duplicates()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_nan_or_plus_infinite_score_is_refused(bad: float) -> None:
    """-inf is the graph's mask of rated items; NaN or +inf can only come from a broken model."""
    batch = UserBatch(np.array([7, 9]), matrix([[(2, 4.0)], [(4, 5.0)]]))
    scores = np.array([[0.5, float("-inf")], [bad, 0.1]], dtype=np.float32)
    items = np.array([[1, 2], [3, 4]], dtype=np.int64)
    with pytest.raises(InputError, match=r"NaN or \+inf for 1 users of a batch \(first: user 9\)"):
        score_batch(lambda _: (scores, items), batch)
    first = UserBatch(np.array([7]), batch.ratings.take(np.array([0])))
    kept = score_batch(lambda _: (scores[:1], items[:1]), first)  # -inf is not refused
    rows = topk_rows(first.user_ids, *kept)  # but dropped
    assert rows["item_id"].to_list() == [1]
