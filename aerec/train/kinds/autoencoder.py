"""What every autoencoder kind shares: its network (one, or an ensemble of members trained
with consecutive seeds), the one training loop of fit and refit, inference and its
description. A kind adds its input transform, its loss, its validation metric and what
its score means."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from aerec.contracts import Progress, Validation
from aerec.data.csr import CsrMatrix
from aerec.train.config import ModelConfig, TrainConfig
from aerec.train.metrics import ScoreBlock, positive_threshold
from aerec.train.model import AutoEncoder, Ensemble, InputTransform, Network
from aerec.train.predict import model_scores, predict_observed
from aerec.train.presets import Preset
from aerec.train.recommender import FitRecord, Recommender
from aerec.train.rows import RatedRows
from aerec.train.trainable import Phase, Selection, TrainStep, every_parameter
from aerec.train.trainer import TrainResult, train_network


class AutoEncoderKind(Recommender):
    """An autoencoder network (or an ensemble of them), trained as a Trainable."""

    inputs: ClassVar[type[InputTransform]] = InputTransform  # how the network reads a row

    def __init__(self, config: ModelConfig, members: int = 1) -> None:
        self.config = config
        self.members = members
        self.network: Network = self._joined([self.new_network() for _ in range(members)])

    # --- as a Trainable ---------------------------------------------------------------
    @property
    @abstractmethod
    def selection(self) -> Selection: ...

    def new_network(self) -> Network:
        return AutoEncoder(self.config, self.inputs())

    def phases(self, network: Network) -> list[Phase]:
        return every_parameter(network)

    def start_epoch(self, network: Network) -> None:
        """Nothing to prepare: the loss reads only the network being trained."""

    @staticmethod
    def _joined(members: Sequence[nn.Module]) -> Network:
        """One member's network, or the ensemble of several."""
        networks = [member for member in members if isinstance(member, Network)]
        assert len(networks) == len(members), "every member is an aerec network"
        return networks[0] if len(networks) == 1 else Ensemble(networks)

    @abstractmethod
    def loss(self, network: Network, batch: RatedRows, step: TrainStep) -> torch.Tensor:
        """The training objective of a batch of the rows the network reads."""

    @abstractmethod
    def validate(
        self, network: Network, fit: CsrMatrix, validation: CsrMatrix, device: str
    ) -> float: ...

    @staticmethod
    def oriented(matrix: CsrMatrix) -> CsrMatrix:
        """The user x item matrix as the rows this kind's network reads."""
        return matrix

    # --- training ---------------------------------------------------------------------
    def _train_members(
        self,
        rows: CsrMatrix,
        validation: CsrMatrix | None,
        train: TrainConfig,
        epochs: Sequence[int] | None,
        device: str,
        progress: Progress | None,
    ) -> list[TrainResult]:
        """The one loop of fit and refit: member i with seed train.seed + i (and, in a
        refit, for epochs[i]); the members become the model's network."""
        results = []
        for n in range(self.members):
            own = replace(train, seed=train.seed + n)
            if epochs is not None:
                own = replace(own, epochs=epochs[n])
            results.append(train_network(self, rows, validation, own, device, progress))
        self.network = self._joined([result.network for result in results])
        return results

    def fit(
        self,
        fit: CsrMatrix,
        validation: CsrMatrix,
        train: TrainConfig,
        device: str = "auto",
        progress: Progress | None = None,
    ) -> FitRecord:
        """Train every member on user x item `fit`, selecting epochs on `validation`; an
        ensemble averages the members."""
        fit, validation = self.oriented(fit), self.oriented(validation)
        results = self._train_members(fit, validation, train, None, device, progress)
        metric = self.selection.metric
        if self.members == 1:
            history = results[0].history
            best = history[results[0].best_epoch - 1][metric]  # the kept epoch's score
        else:
            history = [{"member": n, **row} for n, r in enumerate(results) for row in r.history]
            best = self.validate(self.network, fit, validation, "cpu")  # the ensemble's
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
        results = self._train_members(self.oriented(rows), None, train, epochs, device, progress)
        return [{"member": n, **row} for n, r in enumerate(results) for row in r.history]

    # --- inference --------------------------------------------------------------------
    def score_block(self, train: CsrMatrix, device: str = "cpu") -> ScoreBlock | None:
        return lambda rows: model_scores(self.network, train, rows, device)

    def predict(self, train: CsrMatrix, test: CsrMatrix, device: str = "cpu") -> np.ndarray:
        return predict_observed(self.network, train, test, device)

    def scoring_module(self) -> Network:
        if not self.reads_user_rows:
            return super().scoring_module()
        return self.network.eval()

    def input_width(self) -> int | None:
        return self.config.n_items if self.reads_user_rows else None

    # --- persistence ------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "model": self.config.to_dict(), "members": self.members}

    @classmethod
    def rebuild(
        cls, described: dict[str, Any], part_from: Callable[[dict[str, Any]], Recommender]
    ) -> Recommender:
        return cls(ModelConfig.from_dict(described["model"]), int(described.get("members", 1)))

    @classmethod
    def for_preset(
        cls, preset: Preset, fit: CsrMatrix, part_for: Callable[[str], Recommender]
    ) -> Recommender:
        width = cls.oriented(fit).n_cols
        config = preset.model_config(width, positive_threshold(float(fit.data.max())))
        return cls(config, preset.members)
