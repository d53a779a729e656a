"""Evaluation of a trained model and the same-run baselines on a held-out split.

Nothing of the test side is ever a model input: user vectors come from train only, and
baselines are tuned on a validation slice carved from train.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from aerec.contracts import MetricValues
from aerec.data.csr import CsrMatrix, batches
from aerec.train.baselines import (
    MAX_ITEMS_FOR_ITEM_ITEM,
    Biases,
    ease_block,
    gram_matrix,
    ials_available,
    ials_block,
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

KNN_GRID = [{"neighbours": float(n)} for n in (20, 50, 100, 200)]
EASE_REGULARISATION = (50.0, 100.0, 250.0, 500.0, 1000.0)
EASE_GRID = [{"regularisation": value} for value in EASE_REGULARISATION]
# iALS: factors x regularisation x confidence. On the validation slices of ML-100K u1 and
# ml-latest-small user-temporal:0.2 the choices were (32, 10, 1) and (256, 10, 1); 16
# factors, the grid's former lowest, was chosen on another of bench/quality.py's slices,
# so it starts at 8; a choice at an edge goes on beyond it, up to the limits (1,024
# factors: the fits' time) or the matrix's rank, past which more factors change nothing;
# its fits grow with the ratings, so above this many it is skipped
IALS_GRID = [
    {"factors": float(f), "regularization": r, "alpha": a}
    for f in (8, 16, 32, 64, 128, 256, 512)
    for r in (1.0, 10.0, 100.0)
    for a in (0.3, 1.0, 5.0)
]
MAX_RATINGS_FOR_IALS = 5_000_000
# how far each tuned baseline's grid extends past a choice at its edge (grid_search)
KNN_LIMITS = {"neighbours": (5.0, 800.0)}
EASE_LIMITS = {"regularisation": (5.0, 20_000.0)}
IALS_LIMITS = {"factors": (4.0, 1024.0), "regularization": (0.1, 1000.0), "alpha": (0.05, 25.0)}


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


Setting = dict[str, float]  # a tuned baseline's settings by name
# (train, setting, train's item-item gram or None) -> a score block
BuildBlock = Callable[[CsrMatrix, Setting, np.ndarray | None], ScoreBlock]


@dataclass(frozen=True)
class TunedBaseline:
    """A baseline chosen on the validation slice among the settings of its grid."""

    name: str
    build: BuildBlock
    grid: Sequence[Setting]
    item_item: bool  # whether it reads the n_items x n_items gram matrix
    # how far a choice at the grid's edge extends it, per setting (lowest, highest)
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # per setting, a value from which more cannot change the optimum (iALS factors past
    # the matrix's rank): the grid does not extend past it, and a choice there is no edge
    saturates: Mapping[str, float] = field(default_factory=dict)


def tune_on_validation(
    baseline: TunedBaseline, data: EvalData, k: int = 10
) -> tuple[Setting, float]:
    """The setting with the best validation NDCG@k (fit -> validation), and that score.

    A choice at an edge of the grid in a setting with limits extends the grid that way
    (grid_search), so the choice is not an artefact of where the grid stopped; a choice
    still at an edge (at its limit) is logged as a warning."""
    name = baseline.name
    gram = gram_matrix(data.fit) if baseline.item_item else None

    def score(setting: Setting) -> float:
        started = time.perf_counter()
        block = baseline.build(data.fit, setting, gram)
        ranked = evaluate_ranking(block, data.fit, data.validation, k, threshold=data.threshold)
        log.info(
            "tuning %s: %s, validation NDCG@%d %.4f (%.1f s)",
            name,
            _described(setting),
            k,
            ranked[f"ndcg@{k}"],
            time.perf_counter() - started,
        )
        return ranked[f"ndcg@{k}"]

    tried = grid_search(baseline.grid, baseline.limits, score, baseline.saturates)
    best, top = max(tried, key=lambda pair: pair[1])
    log.info("%s: chose %s by validation NDCG@%d %.4f", name, _described(best), k, top)
    for key, value in best.items():
        values = sorted({setting[key] for setting, _ in tried})
        saturated = value == values[-1] and value >= baseline.saturates.get(key, np.inf)
        if len(values) > 1 and value in (values[0], values[-1]) and not saturated:
            log.warning(
                "%s: %s %s is at the edge of the grid %s; a wider grid may score higher",
                name,
                key,
                f"{value:g}",
                ", ".join(f"{v:g}" for v in values),
            )
    return best, top


def grid_search(
    grid: Sequence[Setting],
    limits: Mapping[str, tuple[float, float]],
    score: Callable[[Setting], float],
    saturates: Mapping[str, float] | None = None,
) -> list[tuple[Setting, float]]:
    """Every setting tried and its score: the grid, then, while the best (the first of
    equals) lies at an edge of what was tried in a setting with limits, one step beyond
    that edge (the ratio of the last two values there), the other settings as chosen, as
    long as the step stays within the limits and does not start from a value at or above
    the setting's `saturates`."""
    tried = [(setting, score(setting)) for setting in grid]
    while True:
        best = max(tried, key=lambda pair: pair[1])[0]
        beyond = _beyond_edges(best, [setting for setting, _ in tried], limits, saturates or {})
        if not beyond:
            return tried
        tried += [(setting, score(setting)) for setting in beyond]


def _beyond_edges(
    best: Setting,
    tried: Sequence[Setting],
    limits: Mapping[str, tuple[float, float]],
    saturates: Mapping[str, float],
) -> list[Setting]:
    """The untried settings one step past each edge `best` lies at, within `limits`, and
    upwards only from below `saturates`."""
    steps = []
    for key, (lowest, highest) in limits.items():
        values = sorted({setting[key] for setting in tried})
        if len(values) < 2:
            continue
        below_saturation = values[-1] < saturates.get(key, np.inf)
        upward = values[-1] * values[-1] / values[-2]
        if best[key] == values[-1] and below_saturation and upward <= highest:
            steps.append({**best, key: upward})
        if best[key] == values[0] and values[0] * values[0] / values[1] >= lowest:
            steps.append({**best, key: values[0] * values[0] / values[1]})
    return [step for step in steps if step not in tried]


def _tuned(baseline: TunedBaseline, data: EvalData, k: int) -> tuple[Setting, ScoreBlock]:
    """The setting chosen on the validation slice, and the baseline refit on train with it."""
    chosen, _ = tune_on_validation(baseline, data, k)
    return chosen, baseline.build(data.train, chosen, None)


def _described(setting: Setting) -> str:
    return ", ".join(f"{key} {value:g}" for key, value in setting.items())


def tuned_baselines(data: EvalData) -> list[TunedBaseline]:
    """The tuned baselines this split allows."""
    tuned: list[TunedBaseline] = []
    if data.train.n_cols > MAX_ITEMS_FOR_ITEM_ITEM:
        log.info(
            "item-kNN and both EASE baselines skipped: %d items (limit %d)",
            data.train.n_cols,
            MAX_ITEMS_FOR_ITEM_ITEM,
        )
    else:
        liked = data.threshold
        tuned += [
            TunedBaseline(
                "item_knn",
                lambda t, s, g: item_knn_block(t, int(s["neighbours"]), g),
                KNN_GRID,
                True,
                KNN_LIMITS,
            ),
            TunedBaseline(
                "ease",
                lambda t, s, g: ease_block(t, s["regularisation"], g),
                EASE_GRID,
                True,
                EASE_LIMITS,
            ),
            TunedBaseline(
                "ease_liked_target",
                lambda t, s, g: liked_ease_block(t, s["regularisation"], liked, g),
                EASE_GRID,
                True,
                EASE_LIMITS,
            ),
        ]
    if not ials_available():
        log.info("iALS skipped: the implicit library is not installed (pip install implicit)")
    elif data.train.nnz > MAX_RATINGS_FOR_IALS:
        log.info(
            "iALS skipped: %d training ratings (limit %d for its %d-setting grid)",
            data.train.nnz,
            MAX_RATINGS_FOR_IALS,
            len(IALS_GRID),
        )
    else:
        build: BuildBlock = lambda t, s, g: ials_block(  # noqa: E731
            t, int(s["factors"]), s["regularization"], s["alpha"]
        )
        rank = float(min(data.fit.n_rows, data.fit.n_cols))  # the highest a fit can have
        tuned.append(TunedBaseline("ials", build, IALS_GRID, False, IALS_LIMITS, {"factors": rank}))
    return tuned


def evaluate_baselines(data: EvalData, k: int = 10) -> dict[str, dict[str, float | None]]:
    """Global mean, biases, popularity, item-kNN, EASE, liked-target EASE (the liked set
    regressed on the rated set) and iALS on the same split; the tuned ones record their
    chosen settings (tuned_<name>)."""
    biases = Biases.fit(data.train)
    mean = Biases(biases.mean, np.zeros_like(biases.user), np.zeros_like(biases.item))
    results: dict[str, dict[str, float | None]] = {}
    for name, model in (("global_mean", mean), ("biases", biases)):
        results[name] = rating_block(data, model.predict_entries(data.test), biases)
        results[name].update(data.ranking(model.score_block, k))
    results["popularity"] = {**NO_RATINGS, **data.ranking(popularity_block(data.train), k)}
    for baseline in tuned_baselines(data):
        chosen, block = _tuned(baseline, data, k)
        results[baseline.name] = {
            **NO_RATINGS,
            **data.ranking(block, k),
            **{f"tuned_{key}": value for key, value in chosen.items()},
        }
    return results


STRONGEST = ("ease", "ease_liked_target", "ials")  # the baselines a deep model must beat


def strongest_on_validation(data: EvalData, k: int = 10) -> dict[str, float]:
    """The best validation NDCG@k of each of the strongest baselines this split allows
    (each over its grid, fit -> validation): what a configuration is compared with when
    it is chosen, so no test rating takes part."""
    return {
        baseline.name: tune_on_validation(baseline, data, k)[1]
        for baseline in tuned_baselines(data)
        if baseline.name in STRONGEST
    }


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
