"""Same-run baselines: global mean, regularised biases, popularity, item-kNN, EASE (on the
rated set and with the liked set as target) and iALS (with the `implicit` library).

Each ranking baseline is a score block (user rows of train -> dense item scores), so one
evaluate_ranking serves the model and every baseline alike.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

import numpy as np

from aerec.data.csr import CsrMatrix, batches
from aerec.train.metrics import ScoreBlock

log = logging.getLogger(__name__)

# Item-item baselines hold an n_items x n_items matrix; above this they are skipped.
MAX_ITEMS_FOR_ITEM_ITEM = 12_000


@dataclass(frozen=True)
class Biases:
    """Rating = mean + user bias + item bias, fitted by regularised alternating updates."""

    mean: float
    user: np.ndarray
    item: np.ndarray

    @classmethod
    def fit(
        cls, train: CsrMatrix, reg_user: float = 15.0, reg_item: float = 10.0, iterations: int = 15
    ) -> Biases:
        rows = np.repeat(np.arange(train.n_rows), train.row_counts())
        cols = train.indices
        mean = float(train.data.mean())
        user, item = np.zeros(train.n_rows), np.zeros(train.n_cols)
        for _ in range(iterations):
            residual = train.data - mean - user[rows]
            item = np.bincount(cols, residual, train.n_cols) / (
                reg_item + np.bincount(cols, minlength=train.n_cols)
            )
            residual = train.data - mean - item[cols]
            user = np.bincount(rows, residual, train.n_rows) / (
                reg_user + np.bincount(rows, minlength=train.n_rows)
            )
        return cls(mean, user, item)

    def predict(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Predictions at (row, col); an index of -1 (unknown user or item) adds no bias."""
        user = np.where(rows >= 0, self.user[np.maximum(rows, 0)], 0.0)
        item = np.where(cols >= 0, self.item[np.maximum(cols, 0)], 0.0)
        return self.mean + user + item

    def predict_entries(self, targets: CsrMatrix) -> np.ndarray:
        rows = np.repeat(np.arange(targets.n_rows), targets.row_counts())
        return self.predict(rows, targets.indices.astype(np.int64))

    def score_block(self, rows: np.ndarray) -> np.ndarray:
        return self.mean + self.user[rows, None] + self.item[None, :]


def popularity_block(train: CsrMatrix) -> ScoreBlock:
    """Every user gets the items with the most training ratings."""
    counts = train.column_counts().astype(np.float64)
    return lambda rows: np.broadcast_to(counts, (len(rows), train.n_cols))


def gram_matrix(train: CsrMatrix, liked_from: float | None = None) -> np.ndarray:
    """X^T X of the binary rated-or-not matrix X, accumulated over user blocks; with
    `liked_from`, X^T L where L marks the ratings of at least that value."""
    gram = np.zeros((train.n_cols, train.n_cols), dtype=np.float64)
    for rows in batches(np.arange(train.n_rows), 2048):
        ratings = train.densify(rows)
        block = (ratings != 0).astype(np.float64)
        right = block if liked_from is None else (ratings >= liked_from).astype(np.float64)
        gram += block.T @ right
    return gram


def binary_block(train: CsrMatrix, weights: np.ndarray) -> ScoreBlock:
    """Scores = binary user rows of train times an item x item weight matrix."""
    return lambda rows: (train.densify(rows) != 0).astype(np.float64) @ weights


def item_knn_block(
    train: CsrMatrix, neighbours: int = 100, gram: np.ndarray | None = None
) -> ScoreBlock:
    """Item-based kNN: cosine similarity on binary ratings, each item's top neighbours kept."""
    gram = gram_matrix(train) if gram is None else gram
    norms = np.sqrt(np.diag(gram))
    similarity = gram / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(similarity, 0.0)
    if neighbours < train.n_cols:
        weakest = np.argpartition(-similarity, neighbours, axis=0)[neighbours:]
        np.put_along_axis(similarity, weakest, 0.0, axis=0)
    return binary_block(train, similarity)


def ease_block(
    train: CsrMatrix, regularisation: float = 250.0, gram: np.ndarray | None = None
) -> ScoreBlock:
    """EASE (Steck 2019): B = I - P diagMat(1 / diag(P)), P = (X^T X + lambda I)^-1."""
    gram = (gram_matrix(train) if gram is None else gram).copy()
    gram[np.diag_indices_from(gram)] += regularisation
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)
    np.fill_diagonal(weights, 0.0)
    return binary_block(train, weights)


def liked_ease_block(
    train: CsrMatrix, regularisation: float, liked_from: float, gram: np.ndarray | None = None
) -> ScoreBlock:
    """EASE regressing the liked set (ratings >= liked_from) on the rated set: B minimises
    |L - XB|^2 + lambda |B|^2 with diag(B) = 0, i.e. B = B0 - P diagMat(diag(B0) / diag(P)),
    B0 = P X^T L. The linear model given the signal of the down-weighted likelihood."""
    gram = (gram_matrix(train) if gram is None else gram).copy()
    gram[np.diag_indices_from(gram)] += regularisation
    precision = np.linalg.inv(gram)
    weights = precision @ gram_matrix(train, liked_from)
    weights -= precision * (np.diag(weights) / np.diag(precision))[None, :]
    np.fill_diagonal(weights, 0.0)
    return binary_block(train, weights)


def ials_available() -> bool:
    """Whether the `implicit` library (the dev extra) is installed."""
    return importlib.util.find_spec("implicit") is not None


def ials_block(
    train: CsrMatrix, factors: int, regularization: float, alpha: float, iterations: int = 15
) -> ScoreBlock:
    """iALS (Hu, Koren & Volinsky 2008) by the `implicit` library's conjugate-gradient ALS
    on the rated set (confidence 1 + alpha where rated): user factors . item factors."""
    import scipy.sparse
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    rated = scipy.sparse.csr_matrix(
        (np.ones(train.nnz, dtype=np.float32), train.indices, train.indptr),
        shape=(train.n_rows, train.n_cols),
    )
    # implicit runs its own threads and asks BLAS for one (or warns)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            calculate_training_loss=False,
            random_state=0,
        )
        model.fit(rated, show_progress=False)
    users, items = np.asarray(model.user_factors), np.asarray(model.item_factors)
    return lambda rows: users[rows] @ items.T
