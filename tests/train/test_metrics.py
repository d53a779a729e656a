"""Every ranking metric against a small hand-computed example."""

import math

import numpy as np
import pytest

from aerec.data.csr import CsrMatrix
from aerec.train.metrics import (
    evaluate_ranking,
    positive_threshold,
    ranking_from_hits,
    rating_metrics,
    top_k,
)


def csr(rows: list[list[float]]) -> CsrMatrix:
    dense = np.array(rows, dtype=np.float32)
    r, c = np.nonzero(dense)
    return CsrMatrix.from_indices(r, c, dense[r, c], dense.shape[0], dense.shape[1])


def test_top_k_order_and_ties() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [3.0, 1.0, 2.0, 0.0]])
    assert top_k(scores, 2).tolist() == [[1, 3], [0, 2]]
    assert top_k(scores, 9).shape == (2, 4)


def test_ranking_from_hits_exact() -> None:
    # user A: hits at ranks 1 and 3 of k=3, 2 positives; user B: hit at rank 2, 4 positives
    hits = np.array([[True, False, True], [False, True, False]])
    sums = ranking_from_hits(hits, np.array([2, 4]), k=3)
    assert sums["precision@3"] == pytest.approx(2 / 3 + 1 / 3)
    assert sums["recall@3"] == pytest.approx(2 / 2 + 1 / 3)  # hits / min(k, positives)
    ndcg_a = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    ndcg_b = (1 / math.log2(3)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert sums["ndcg@3"] == pytest.approx(ndcg_a + ndcg_b)
    assert sums["hitrate@3"] == 2


def test_evaluate_ranking_excludes_train_and_counts_positives_only() -> None:
    train = csr([[5, 0, 0, 0, 0], [0, 3, 0, 0, 0], [4, 0, 0, 0, 0]])
    # user 0: item 1 is a positive (5), item 2 is not (2); user 2 has no positive
    test = csr([[0, 5, 2, 0, 0], [0, 0, 0, 4, 0], [0, 0, 0, 0, 3]])
    fixed = np.array([9.0, 8.0, 7.0, 6.0, 5.0])  # item 0 best, then 1, 2, ...
    result = evaluate_ranking(lambda rows: np.tile(fixed, (len(rows), 1)), train, test, k=2)
    # user 0 is shown [1, 2] (item 0 was rated in train): hit at rank 1
    # user 1 is shown [0, 2] (item 1 was rated): no hit on its positive, item 3
    assert result["ranked_users"] == 2
    assert result["precision@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert result["recall@2"] == pytest.approx((1 + 0) / 2)
    assert result["ndcg@2"] == pytest.approx((1 + 0) / 2)
    assert result["hitrate@2"] == pytest.approx(0.5)
    assert result["coverage@2"] == pytest.approx(3 / 5)  # items 0, 1, 2
    popularity = {0: 2, 1: 1, 2: 0}  # training ratings per item
    shown = [1, 2, 0, 2]
    assert result["mean_popularity@2"] == pytest.approx(sum(popularity[i] for i in shown) / 4)


def test_rating_metrics_clip_to_scale() -> None:
    result = rating_metrics(np.array([6.0, 3.0]), np.array([5.0, 4.0]))
    assert result == {"rmse": pytest.approx(math.sqrt(0.5)), "mae": pytest.approx(0.5)}
    # ML-100K's scale is 1..5: a prediction of 0.6 counts as 1
    ml100k = rating_metrics(np.array([0.6]), np.array([2.0]), scale=(1.0, 5.0))
    assert ml100k == {"rmse": pytest.approx(1.0), "mae": pytest.approx(1.0)}


def test_unseen_positives_stay_in_the_truth_and_coverage_counts_the_catalogue() -> None:
    train = csr([[5, 0, 0, 0], [0, 3, 0, 0]])
    test = csr([[0, 5, 0, 0], [0, 0, 0, 0]])
    fixed = np.array([4.0, 3.0, 2.0, 1.0])
    result = evaluate_ranking(
        lambda rows: np.tile(fixed, (len(rows), 1)),
        train,
        test,
        k=2,
        unseen_positives=np.array([1, 2]),  # user 0: one more positive; user 1: two, only
        catalogue=8,  # items of the ratings file the model never saw count too
    )
    # user 0: shown [1, 2], hit at rank 1 of 2 positives; user 1: shown [0, 2], no hit
    assert result["ranked_users"] == 2
    assert result["recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert result["ndcg@2"] == pytest.approx((1 / (1 + 1 / math.log2(3)) + 0) / 2)
    assert result["coverage@2"] == pytest.approx(3 / 8)


def test_implicit_feedback_counts_every_held_out_rating() -> None:
    assert positive_threshold(5.0) == 4.0 and positive_threshold(1.0) == 1.0
    train, test = csr([[1, 0, 0]]), csr([[0, 0, 1]])
    result = evaluate_ranking(
        lambda rows: np.tile([3.0, 1.0, 2.0], (len(rows), 1)),
        train,
        test,
        k=1,
        threshold=positive_threshold(1.0),
    )
    assert (result["ranked_users"], result["ndcg@1"]) == (1, 1.0)
    assert evaluate_ranking(lambda rows: np.ones((len(rows), 3)), train, test, k=1)["ndcg@1"] == 0
