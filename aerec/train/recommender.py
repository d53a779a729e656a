"""The one interface every model kind implements (the kinds: aerec/train/kinds/, by name
in aerec/train/registry.py).

A kind says how it is trained, how it is selected, how it scores users and predicts
ratings, what its score means, and whether it exports to a scoring graph. The trainer,
evaluation, checkpoints and export call these methods and never test a kind's settings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from torch import nn

from aerec.contracts import Progress, Validation
from aerec.data.csr import CsrMatrix
from aerec.errors import InputError
from aerec.train.config import TrainConfig
from aerec.train.metrics import ScoreBlock
from aerec.train.model import Network
from aerec.train.presets import Preset


@dataclass
class FitRecord:
    """What fitting left besides the weights: per-epoch history and the selection."""

    history: list[dict[str, float]]
    validation: Validation
    device: str


class Recommender(ABC):
    """What training, evaluation, checkpoints and export use of any model."""

    name: ClassVar[str]  # the kind's name in config.json and the registry
    predicts_ratings: ClassVar[bool]  # RMSE/MAE apply
    score_meaning: ClassVar[str]  # what a recs row's score is: a key of SCORE_MEANINGS
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
    def input_width(self) -> int | None:
        """The item count the network reads (the item table's length); None when it does
        not read user rows."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What config.json records to rebuild this model: its "kind" and settings."""

    @classmethod
    @abstractmethod
    def rebuild(
        cls, described: dict[str, Any], part_from: Callable[[dict[str, Any]], Recommender]
    ) -> Recommender:
        """An untrained model from `describe`'s record (`part_from` rebuilds a part)."""

    @classmethod
    @abstractmethod
    def for_preset(
        cls, preset: Preset, fit: CsrMatrix, part_for: Callable[[str], Recommender]
    ) -> Recommender:
        """An untrained model of a preset, as wide as the rows of `fit` it will read
        (`part_for` builds a part by preset name)."""
