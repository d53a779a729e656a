import numpy as np
import pytest

from aerec.data.csr import CsrMatrix
from aerec.train.baselines import (
    Biases,
    ease_block,
    gram_matrix,
    item_knn_block,
    liked_ease_block,
    popularity_block,
)


def csr(dense: np.ndarray) -> CsrMatrix:
    r, c = np.nonzero(dense)
    return CsrMatrix.from_indices(r, c, dense[r, c].astype(np.float32), *dense.shape)


def test_biases_exact_without_regularisation() -> None:
    # ratings = 3 + user effect (+1, -1) + item effect (+0.5, -0.5): recovered exactly
    dense = np.array([[4.5, 3.5], [2.5, 1.5]])
    biases = Biases.fit(csr(dense), reg_user=0.0, reg_item=0.0, iterations=50)
    assert biases.mean == pytest.approx(3.0)
    predicted = biases.predict(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    np.testing.assert_allclose(predicted, [4.5, 3.5, 2.5, 1.5], atol=1e-6)
    assert biases.predict(np.array([-1]), np.array([-1]))[0] == pytest.approx(3.0)


def test_popularity_and_gram() -> None:
    train = csr(np.array([[5, 0, 1], [4, 2, 0]]))
    assert popularity_block(train)(np.array([0])).tolist() == [[2.0, 1.0, 1.0]]
    np.testing.assert_array_equal(gram_matrix(train), [[2, 1, 1], [1, 1, 0], [1, 0, 1]])


def test_ease_closed_form() -> None:
    x = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=float)
    train = csr(x)
    gram = x.T @ x + 2.0 * np.eye(3)
    precision = np.linalg.inv(gram)
    weights = np.eye(3) - precision / np.diag(precision)
    np.testing.assert_allclose(ease_block(train, 2.0)(np.arange(4)), x @ weights, atol=1e-9)
    assert np.allclose(np.diag(weights), 0.0)


def test_liked_ease_is_ridge_regression_of_liked_on_the_other_rated_items() -> None:
    ratings = np.array([[5, 2, 0, 4], [4, 0, 1, 5], [0, 5, 4, 1], [5, 4, 5, 0], [1, 0, 5, 4]])
    rated, liked = (ratings != 0).astype(float), (ratings >= 4).astype(float)
    np.testing.assert_array_equal(gram_matrix(csr(ratings), liked_from=4), rated.T @ liked)
    # Column j of B: ridge regression of liked item j on the rated items other than j.
    want = np.zeros((4, 4))
    for j in range(4):
        others = [i for i in range(4) if i != j]
        x = rated[:, others]
        want[others, j] = np.linalg.solve(x.T @ x + 3.0 * np.eye(3), x.T @ liked[:, j])
    got = liked_ease_block(csr(ratings), 3.0, liked_from=4)(np.arange(5))
    np.testing.assert_allclose(got, rated @ want, atol=1e-9)


def test_item_knn_keeps_top_neighbours() -> None:
    train = csr(np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 1]], dtype=float))
    scores = item_knn_block(train, neighbours=1)(np.array([0]))
    # user 0 rated items 0 and 1; each item's single nearest neighbour is kept
    assert scores[0, 2] == 0.0  # item 2's only neighbour is item 3
    assert scores[0, 0] > 0 and scores[0, 1] > 0
