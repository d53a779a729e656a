"""The one interface every model kind implements, and the autoencoder kinds behind it.

A kind says how it is trained (its loss, which rows it reads), how it is selected (its
validation metric), how it scores users and predicts ratings, and whether it exports to
a scoring graph. The trainer, evaluation, checkpoints and export call these methods and
never test a kind's settings themselves; `recommender_for` is the only place that maps
a config to its kind.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from aerec.contracts import Progress, Validation
from aerec.data.csr import CsrMatrix, batches
from aerec.errors import InputError
from aerec.train.config import ModelConfig, TrainConfig
from aerec.train.loss import masked_mse, multinomial_nll, rating_weights
from aerec.train.metrics import ScoreBlock, evaluate_ranking, positive_threshold, rmse
from aerec.train.model import Ensemble, Network, build_network
from aerec.train.predict import model_scores, predict_observed
from aerec.train.trainer import train_network

log = logging.getLogger(__name__)

# An item-based model ranks from its whole items x users reconstruction; above this many
# entries (800 MB of float32) it does not rank.
MAX_DENSE_ENTRIES = 200_000_000


@dataclass
class FitRecord:
    """What fitting left besides the weights: per-epoch history and the selection."""

    history: list[dict[str, float]]
    validation: Validation
    device: str


class Recommender(ABC):
    """What training, evaluation, checkpoints and export use of any model."""

    predicts_ratings: ClassVar[bool]  # RMSE/MAE apply, and select the model
    # The network reads a user's ratings over all items: it scores any user, so export-onnx
    # can ship it, and its input width is the item table's length.
    reads_user_rows: ClassVar[bool] = True
    network: nn.Module  # what the checkpoint's weights file holds

    @abstractmethod
    def fit(
        self,
        fit: CsrMatrix,
        validation: CsrMatrix,
        train: TrainConfig,
        device: str = "auto",
        progress: Progress | None = None,
    ) -> FitRecord:
        """Train on user x item `fit`, selecting on `validation`."""

    @abstractmethod
    def refit(
        self,
        rows: CsrMatrix,
        train: TrainConfig,
        epochs: Sequence[int],
        device: str = "auto",
        progress: Progress | None = None,
    ) -> list[dict[str, float]]:
        """Train afresh on all of user x item `rows` for the epochs fit chose."""

    @abstractmethod
    def score_block(self, train: CsrMatrix, device: str = "cpu") -> ScoreBlock | None:
        """Dense scores for user rows of `train`; None when this model cannot rank them."""

    @abstractmethod
    def predict(self, train: CsrMatrix, test: CsrMatrix, device: str = "cpu") -> np.ndarray:
        """Predicted ratings at the entries of user x item `test`, in test.data order."""

    def scoring_module(self) -> Network:
        """The network that maps users' ratings over all items to item scores."""
        raise InputError(
            "an item-based or blended model predicts ratings for evaluation and cannot score "
            "user vectors; export a user-based model such as the default preset"
        )

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What config.json records to rebuild this model (`recommender_from`)."""


class AutoEncoderKind(Recommender):
    """An autoencoder network (or an ensemble of them): how it is trained (its loss, which
    rows it reads), selected (its validation metric) and used."""

    def __init__(self, config: ModelConfig, members: int = 1) -> None:
        self.config = config
        self.members = members
        self.network: Network = build_network(config, members)

    # --- training -------------------------------------------------------------------
    @abstractmethod
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The training objective of a batch of the rows the network reads."""

    @staticmethod
    def oriented(matrix: CsrMatrix) -> CsrMatrix:
        """The user x item matrix as the rows this kind's network reads."""
        return matrix

    def validate(
        self, fit: CsrMatrix, validation: CsrMatrix, device: str = "cpu"
    ) -> tuple[str, float]:
        """(metric, value) on the validation slice from the `fit` rows, both oriented."""
        if self.predicts_ratings:
            predicted = predict_observed(self.network, fit, validation, device)
            scale = (float(fit.data.min()), float(fit.data.max()))
            return "val_rmse", rmse(np.clip(predicted, *scale), validation.data)
        block = lambda rows: model_scores(self.network, fit, rows, device)  # noqa: E731
        threshold = positive_threshold(float(fit.data.max()))
        return "val_ndcg@10", evaluate_ranking(block, fit, validation, 10, threshold=threshold)[
            "ndcg@10"
        ]

    def fit(
        self,
        fit: CsrMatrix,
        validation: CsrMatrix,
        train: TrainConfig,
        device: str = "auto",
        progress: Progress | None = None,
    ) -> FitRecord:
        """Train every member (member i with seed train.seed + i) on user x item `fit`,
        selecting epochs on `validation`; an ensemble averages the members."""
        fit, validation = self.oriented(fit), self.oriented(validation)
        members = [type(self)(self.config) for _ in range(self.members)]
        results = [
            train_network(
                member, fit, validation, replace(train, seed=train.seed + n), device, progress
            )
            for n, member in enumerate(members)
        ]
        if self.members == 1:
            self.network = members[0].network
            history = results[0].history
        else:
            self.network = Ensemble([m.network for m in members])
            history = [{"member": n, **row} for n, r in enumerate(results) for row in r.history]
        metric, best = self.validate(fit, validation, "cpu")
        selected = Validation(metric=metric, best=best, best_epoch=[r.best_epoch for r in results])
        return FitRecord(history=history, validation=selected, device=results[0].device)

    def refit(
        self,
        rows: CsrMatrix,
        train: TrainConfig,
        epochs: Sequence[int],
        device: str = "auto",
        progress: Progress | None = None,
    ) -> list[dict[str, float]]:
        """Train every member afresh on all of user x item `rows` for the epochs that
        validation chose for it (member i: epochs[i]), keeping the last weights."""
        rows = self.oriented(rows)
        members = [type(self)(self.config) for _ in range(self.members)]
        results = [
            train_network(
                member,
                rows,
                None,
                replace(train, seed=train.seed + n, epochs=epochs[n]),
                device,
                progress,
            )
            for n, member in enumerate(members)
        ]
        networks = [m.network for m in members]
        self.network = networks[0] if self.members == 1 else Ensemble(networks)
        return [{"member": n, **row} for n, r in enumerate(results) for row in r.history]

    # --- inference ------------------------------------------------------------------
    def score_block(self, train: CsrMatrix, device: str = "cpu") -> ScoreBlock | None:
        """Dense scores for user rows of `train`; None when this model cannot rank them."""
        return lambda rows: model_scores(self.network, train, rows, device)

    def predict(self, train: CsrMatrix, test: CsrMatrix, device: str = "cpu") -> np.ndarray:
        """Predicted ratings at the entries of user x item `test`, in test.data order."""
        return predict_observed(self.network, train, test, device)

    def scoring_module(self) -> Network:
        if not self.reads_user_rows:
            return super().scoring_module()
        return self.network.eval()

    # --- persistence ----------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"model": self.config.to_dict(), "members": self.members}


class RatingAutoEncoder(AutoEncoderKind):
    """Reconstructs a user's ratings under masked MSE (AutoRec, DeepRecommender)."""

    predicts_ratings = True

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return masked_mse(output, target)


class MultinomialAutoEncoder(AutoEncoderKind):
    """Mult-DAE: item logits under the multinomial likelihood of the rated set, items
    rated below the positive threshold down-weighted as the config says; ranks."""

    predicts_ratings = False

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weights = rating_weights(
            target, self.config.positive_rating, self.config.below_positive_weight
        )
        return multinomial_nll(output, weights)


class ItemAutoEncoder(RatingAutoEncoder):
    """I-AutoRec: reconstructs an item's ratings by all users; predicts, cannot score users."""

    reads_user_rows = False

    @staticmethod
    def oriented(matrix: CsrMatrix) -> CsrMatrix:
        return matrix.transpose()

    def score_block(self, train: CsrMatrix, device: str = "cpu") -> ScoreBlock | None:
        if train.n_rows * train.n_cols > MAX_DENSE_ENTRIES:
            log.info(
                "ranking of the item-based model skipped: its %d x %d reconstruction is too "
                "large to hold",
                train.n_cols,
                train.n_rows,
            )
            return None
        items = train.transpose()
        full = np.concatenate(
            [
                model_scores(self.network, items, rows, device)
                for rows in batches(np.arange(items.n_rows), 1024)
            ]
        )
        return lambda rows: full[:, rows].T

    def predict(self, train: CsrMatrix, test: CsrMatrix, device: str = "cpu") -> np.ndarray:
        transposed = test.transpose()
        predicted = predict_observed(self.network, train.transpose(), transposed, device)
        # Back from item-major to user-major order: sort the transposed entries by (user, item).
        users = transposed.indices.astype(np.int64)
        items = np.repeat(np.arange(transposed.n_rows), transposed.row_counts())
        return predicted[np.lexsort((items, users))]


def kind_of(likelihood: str = "mse", item_based: bool = False) -> type[AutoEncoderKind]:
    """The kind that model settings describe."""
    if item_based:
        return ItemAutoEncoder
    if likelihood == "multinomial":
        return MultinomialAutoEncoder
    return RatingAutoEncoder


def recommender_for(config: ModelConfig, members: int = 1) -> AutoEncoderKind:
    """An untrained model of the kind a model config describes."""
    return kind_of(config.likelihood, config.item_based)(config, members)


def recommender_from(described: dict[str, Any]) -> Recommender:
    """Rebuild (untrained) what `Recommender.describe` recorded."""
    if "blend" in described:
        from aerec.train.blend import RatingBlend  # a blend is built of this module's kinds

        return RatingBlend([_autoencoder_from(part) for part in described["blend"]])
    return _autoencoder_from(described)


def _autoencoder_from(described: dict[str, Any]) -> AutoEncoderKind:
    return recommender_for(
        ModelConfig.from_dict(described["model"]), int(described.get("members", 1))
    )
