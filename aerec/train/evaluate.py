"""Evaluation of a trained model and the same-run baselines on a held-out split.

Nothing of the test side is ever a model input: user vectors come from train only, and
baselines are tuned on a validation slice carved from train.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from aerec.contracts import MetricValues
from aerec.data.csr import CsrMatrix, batches
from aerec.train.baselines import (
    MAX_ITEMS_FOR_ITEM_ITEM,
    Biases,
    ease_block,
    gram_matrix,
    item_knn_block,
    liked_ease_block,
    popularity_block,
)
from aerec.train.metrics import (
    ScoreBlock,
    evaluate_ranking,
    positive_threshold,
    rating_metrics,
    top_k,
)
from aerec.train.predict import model_scores
from aerec.train.recommender import Recommender

log = logging.getLogger(__name__)

KNN_NEIGHBOURS = (20, 50, 100, 200)
EASE_REGULARISATION = (50.0, 100.0, 250.0, 500.0, 1000.0)


@dataclass(frozen=True)
class EvalData:
    """Matrices of one split over the train side's id maps.

    cold_* hold the test ratings dropped from `test` because their user or item is not
    in train (index -1 where unknown); they are scored only by the bias fallback.
    """

    train: CsrMatrix
    test: CsrMatrix
    fit: CsrMatrix  # train minus the validation slice
    validation: CsrMatrix
    cold_rows: np.ndarray
    cold_cols: np.ndarray
    cold_ratings: np.ndarray
    catalogue: int  # distinct items in the whole ratings file (train, test and cold)
    scale: tuple[float, float]  # the data set's lowest and highest rating

    @property
    def threshold(self) -> float:
        """The rating from which a held-out rating is a positive."""
        return positive_threshold(self.scale[1])

    @property
    def unseen_positives(self) -> np.ndarray:
        """Per train user: held-out positives of items absent from train (always misses)."""
        unseen = (
            (self.cold_rows >= 0) & (self.cold_cols < 0) & (self.cold_ratings >= self.threshold)
        )
        return np.bincount(self.cold_rows[unseen], minlength=self.train.n_rows)

    def ranking(self, block: ScoreBlock, k: int) -> dict[str, float]:
        """The ranking metrics of a score block on the test side, by the full protocol."""
        return evaluate_ranking(
            block,
            self.train,
            self.test,
            k,
            unseen_positives=self.unseen_positives,
            catalogue=self.catalogue,
            threshold=self.threshold,
        )


def rating_block(data: EvalData, predicted: np.ndarray, biases: Biases) -> MetricValues:
    """RMSE/MAE on the kept test ratings, and RMSE over all of them with a bias fallback."""
    metrics: MetricValues = dict(rating_metrics(predicted, data.test.data, data.scale))
    fallback = biases.predict(data.cold_rows, data.cold_cols)
    every = rating_metrics(
        np.concatenate([predicted, fallback]),
        np.concatenate([data.test.data, data.cold_ratings]),
        data.scale,
    )
    metrics["rmse_with_cold"] = every["rmse"]
    metrics["test_ratings_with_cold"] = int(data.test.nnz + data.cold_ratings.size)
    return metrics


NO_RATINGS = {"rmse": None, "mae": None, "rmse_with_cold": None}


def evaluate_model(
    model: Recommender,
    data: EvalData,
    k: int = 10,
    device: str = "cpu",
    biases: Biases | None = None,
) -> dict[str, float | None]:
    """The model's rating metrics (MSE models) and ranking metrics on the test side."""
    biases = biases or Biases.fit(data.train)
    result: dict[str, float | None] = dict(NO_RATINGS)
    if model.predicts_ratings:
        result.update(rating_block(data, model.predict(data.train, data.test, device), biases))
    block = model.score_block(data.train, device)
    if block is not None:
        result.update(data.ranking(block, k))
    return result


BuildBlock = Callable[..., ScoreBlock]  # (train, setting, gram=None) -> a score block


def _tuned(
    name: str, build: BuildBlock, grid: Sequence[float], data: EvalData, k: int
) -> tuple[float, ScoreBlock]:
    """Pick the grid value with the best validation NDCG (fit -> validation), refit on train."""
    gram = gram_matrix(data.fit)
    scores = {}
    for number, value in enumerate(grid, start=1):
        started = time.perf_counter()
        scores[value] = evaluate_ranking(
            build(data.fit, value, gram=gram),
            data.fit,
            data.validation,
            k,
            threshold=data.threshold,
        )[f"ndcg@{k}"]
        log.info(
            "tuning %s (%d/%d): setting %s, validation NDCG@%d %.4f (%.1f s)",
            name,
            number,
            len(grid),
            value,
            k,
            scores[value],
            time.perf_counter() - started,
        )
    best = max(scores, key=scores.__getitem__)
    log.info("%s: validation NDCG@%d by setting %s; chose %s", name, k, scores, best)
    return best, build(data.train, best)


def evaluate_baselines(
    data: EvalData, k: int = 10, liked_ease: bool = False
) -> dict[str, dict[str, float | None]]:
    """Global mean, biases, popularity, item-kNN and EASE on the same split; with
    `liked_ease`, also EASE regressing the liked set on the rated set."""
    biases = Biases.fit(data.train)
    mean = Biases(biases.mean, np.zeros_like(biases.user), np.zeros_like(biases.item))
    results: dict[str, dict[str, float | None]] = {}
    for name, model in (("global_mean", mean), ("biases", biases)):
        results[name] = rating_block(data, model.predict_entries(data.test), biases)
        results[name].update(data.ranking(model.score_block, k))
    results["popularity"] = {**NO_RATINGS, **data.ranking(popularity_block(data.train), k)}
    if data.train.n_cols > MAX_ITEMS_FOR_ITEM_ITEM:
        log.info(
            "item-kNN and EASE skipped: %d items (limit %d)",
            data.train.n_cols,
            MAX_ITEMS_FOR_ITEM_ITEM,
        )
        return results
    tuned: list[tuple[str, BuildBlock, Sequence[float]]] = [
        ("item_knn", lambda t, v, gram=None: item_knn_block(t, int(v), gram), KNN_NEIGHBOURS),
        ("ease", lambda t, v, gram=None: ease_block(t, v, gram), EASE_REGULARISATION),
    ]
    if liked_ease:
        tuned.append(
            (
                "ease_liked_target",
                lambda t, v, gram=None: liked_ease_block(
                    t, v, positive_threshold(float(t.data.max())), gram
                ),
                EASE_REGULARISATION,
            )
        )
    for name, build, grid in tuned:
        chosen, block = _tuned(name, build, grid, data, k)
        results[name] = {
            **NO_RATINGS,
            **data.ranking(block, k),
            "tuned": chosen,
        }
    return results


def leaky_seed_topk_accuracy(model: Recommender, data: EvalData, k: int = 10) -> float | None:
    """The second seed's "top-k accuracy", reproduced to show why it must not be trusted.

    It feeds each user's train AND test ratings to the model and counts how many of the
    test items come back in the unmasked top k (divided by min(k, test items)): the
    answers are part of the input, so an identity-like model scores well.
    """
    if not model.reads_user_rows:
        return None
    rows_of = [np.repeat(np.arange(m.n_rows), m.row_counts()) for m in (data.train, data.test)]
    both = CsrMatrix.from_indices(
        np.concatenate(rows_of),
        np.concatenate([data.train.indices, data.test.indices]),
        np.concatenate([data.train.data, data.test.data]),
        data.train.n_rows,
        data.train.n_cols,
    )
    users = np.flatnonzero(data.test.row_counts())
    total = 0.0
    for rows in batches(users, 1024):
        recommended = top_k(model_scores(model.network, both, rows), k)
        tested = data.test.densify(rows) != 0
        found = tested[np.arange(len(rows))[:, None], recommended].sum(axis=1)
        total += float((found / np.minimum(data.test.row_counts()[rows], k)).sum())
    return total / max(len(users), 1)
