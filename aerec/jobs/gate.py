"""The retrain quality gate: both models rank the same held-out slice, and the candidate is
refused only when it is worse by more than the comparison's own noise.

The slice is the candidate's split: each user's training-side ratings are the input of both
exported models (each knows only its own items; an unknown item's rating is dropped), and
the test side's positives (ratings at the evaluation's positive threshold or above: 4,
or the data's highest rating when that is lower, as on all-1 implicit data; items new to
the candidate included) are the truth. Per user, the difference of NDCG@k between
candidate and current is taken; its mean is judged against `NOISE_Z` standard errors of
that mean (or a fixed `tolerance`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from aerec.data.split import Split
from aerec.errors import InputError
from aerec.score.scorer import BatchScorer, score_users
from aerec.score.vectors import build_user_vectors
from aerec.train.metrics import POSITIVE, ndcg_per_user, positive_threshold

NOISE_Z = 2.0  # how many standard errors of the mean difference count as noise
MIN_USERS = 10  # fewer held-out users than this cannot tell two models apart


@dataclass(frozen=True)
class GateResult:
    metric: str  # ndcg@k
    users: int  # held-out users with a positive, the same for both models
    candidate: float
    current: float
    difference: float  # candidate - current, the mean over users
    standard_error: float  # of that mean
    allowed: float  # how much worse the candidate may be and still pass

    @property
    def passed(self) -> bool:
        return self.difference >= -self.allowed

    def as_dict(self) -> dict[str, float | int | str | bool]:
        return {**asdict(self), "passed": self.passed}


def gate_threshold(split: Split) -> float:
    """The positive threshold of the split's ratings, as train-model's evaluation has it."""
    largest = pl.concat([split.train, split.test, split.cold])["rating"].max()
    return positive_threshold(float(largest)) if largest is not None else POSITIVE  # type: ignore[arg-type]


def held_out(split: Split) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(inputs, truth): the train-side ratings and the held-out positives of users with both."""
    threshold = gate_threshold(split)
    truth = pl.concat([split.test, split.cold]).filter(pl.col("rating") >= threshold)
    users = truth["user_id"].unique(maintain_order=False).sort()
    users = users.filter(users.is_in(split.train["user_id"].unique().implode()))
    truth = truth.filter(pl.col("user_id").is_in(users.implode()))
    inputs = split.train.filter(pl.col("user_id").is_in(users.implode()))
    return inputs, truth


def ndcg_of_model(
    model: Path, inputs: pl.DataFrame, truth: pl.DataFrame, k: int, device: str
) -> np.ndarray:
    """NDCG@k of the exported model for each truth user, in ascending user id order."""
    scorer = BatchScorer(model, device)
    if scorer.info.k < k:
        raise InputError(f"{model}: computes only its top {scorer.info.k}, the gate needs {k}")
    rows = score_users(scorer, build_user_vectors(inputs, scorer.info.items), k=k)
    users = truth["user_id"].unique().sort()
    positions = {int(user): n for n, user in enumerate(users)}
    hit = rows.join(truth.select("user_id", "item_id"), on=["user_id", "item_id"], how="semi")
    hits = np.zeros((len(users), k), dtype=bool)
    hits[[positions[int(u)] for u in hit["user_id"]], hit["rank"].to_numpy() - 1] = True
    counts = truth.group_by("user_id").len().sort("user_id")["len"].to_numpy()
    return ndcg_per_user(hits, counts, k)


def compare_models(
    candidate: Path,
    current: Path,
    split: Split,
    k: int = 10,
    tolerance: float | None = None,
    device: str = "auto",
) -> GateResult:
    """Rank the held-out slice with both models and judge the paired difference."""
    inputs, truth = held_out(split)
    users = truth["user_id"].n_unique()
    if users < MIN_USERS:
        raise InputError(
            f"split {split.spec}: {users} held-out users with a rating >= "
            f"{gate_threshold(split):g}, "
            f"too few (< {MIN_USERS}) to compare the candidate with the current model"
        )
    new = ndcg_of_model(candidate, inputs, truth, k, device)
    old = ndcg_of_model(current, inputs, truth, k, device)
    differences = new - old
    standard_error = float(differences.std(ddof=1) / math.sqrt(users))
    return GateResult(
        metric=f"ndcg@{k}",
        users=users,
        candidate=float(new.mean()),
        current=float(old.mean()),
        difference=float(differences.mean()),
        standard_error=standard_error,
        allowed=NOISE_Z * standard_error if tolerance is None else tolerance,
    )
