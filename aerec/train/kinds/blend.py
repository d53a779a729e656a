"""A blend of rating models: each part trained on its own, then one weight per part and an
intercept fitted by least squares to the parts' predictions on the validation slice."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from aerec.contracts import Progress, Validation
from aerec.data.csr import CsrMatrix
from aerec.train.config import TrainConfig
from aerec.train.kinds.autoencoder import AutoEncoderKind
from aerec.train.metrics import ScoreBlock, rmse
from aerec.train.presets import PRESETS, Preset
from aerec.train.recommender import FitRecord, Recommender

log = logging.getLogger(__name__)


def blend_weights(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares [intercept, weight per column] of `target` on predictions
    [n, parts]."""
    design = np.column_stack([np.ones(len(target)), predicted.astype(np.float64)])
    return np.linalg.lstsq(design, target.astype(np.float64), rcond=None)[0]


def blended(predicted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The blend of predictions [n, parts] under blend_weights' `weights`."""
    return weights[0] + predicted.astype(np.float64) @ weights[1:]


class BlendNetwork(nn.Module):
    """What a blend's weights file holds: its parts' networks and the blend weights."""

    weights: torch.Tensor

    def __init__(self, parts: Sequence[nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)
        # weights[0] is the intercept, weights[1 + n] part n's weight.
        values = torch.zeros(len(parts) + 1) if weights is None else torch.tensor(weights)
        self.register_buffer("weights", values.to(torch.float64))


class RatingBlend(Recommender):
    """Rating predictions of autoencoder kinds, blended linearly (fitted on validation)."""

    name = "blend"
    predicts_ratings = True
    score_meaning = "rating"
    reads_user_rows = False

    def __init__(
        self, parts: Sequence[AutoEncoderKind], trains: Sequence[TrainConfig] | None = None
    ) -> None:
        """`trains`: each part's optimiser settings, needed to fit (not to load) a blend."""
        self.parts = list(parts)
        self.trains = trains
        self.network: BlendNetwork = BlendNetwork([part.network for part in self.parts])

    @property
    def weights(self) -> np.ndarray:
        return self.network.weights.numpy()

    def _part_train(self, part: int, train: TrainConfig) -> TrainConfig:
        """Part `part`'s own settings with the seed and epoch limit of `train`."""
        if self.trains is None:
            raise ValueError("a blend rebuilt from its description has no training settings")
        own = self.trains[part]
        return replace(own, seed=train.seed, epochs=min(own.epochs, train.epochs))

    def fit(
        self,
        fit: CsrMatrix,
        validation: CsrMatrix,
        train: TrainConfig,
        device: str = "auto",
        progress: Progress | None = None,
    ) -> FitRecord:
        records = []
        for n, part in enumerate(self.parts):
            log.info("blend part %d of %d", n + 1, len(self.parts))
            records.append(part.fit(fit, validation, self._part_train(n, train), device, progress))
        predicted = np.stack([part.predict(fit, validation) for part in self.parts], axis=1)
        weights = blend_weights(predicted, validation.data)
        self.network = BlendNetwork([part.network for part in self.parts], weights.tolist())
        log.info(
            "blend weights on the validation slice: intercept %.3f, parts %s",
            weights[0],
            ", ".join(f"{w:.3f}" for w in weights[1:]),
        )
        scale = (float(fit.data.min()), float(fit.data.max()))
        best = rmse(np.clip(blended(predicted, weights), *scale), validation.data)
        history = [{"part": n, **row} for n, r in enumerate(records) for row in r.history]
        epochs = [epoch for r in records for epoch in r.validation["best_epoch"]]
        selected = Validation(metric="val_rmse", best=best, best_epoch=epochs)
        return FitRecord(history=history, validation=selected, device=records[0].device)

    def refit(
        self,
        rows: CsrMatrix,
        train: TrainConfig,
        epochs: Sequence[int],
        device: str = "auto",
        progress: Progress | None = None,
    ) -> list[dict[str, float]]:
        """Refit every part for its chosen epochs (epochs lists the parts' members in
        order); the blend weights stay those fitted on validation."""
        if not self.network.weights.any():
            raise ValueError("a blend is refit after its fit: its weights come from validation")
        history: list[dict[str, float]] = []
        start = 0
        for n, part in enumerate(self.parts):
            own = epochs[start : start + part.members]
            start += part.members
            log.info("refitting blend part %d of %d for epochs %s", n + 1, len(self.parts), own)
            rows_of_part = part.refit(rows, self._part_train(n, train), own, device, progress)
            history += [{"part": n, **row} for row in rows_of_part]
        self.network = BlendNetwork([part.network for part in self.parts], self.weights.tolist())
        return history

    def predict(self, train: CsrMatrix, test: CsrMatrix, device: str = "cpu") -> np.ndarray:
        predicted = np.stack([part.predict(train, test, device) for part in self.parts], axis=1)
        return blended(predicted, self.weights).astype(np.float32)

    def score_block(self, train: CsrMatrix, device: str = "cpu") -> ScoreBlock | None:
        blocks = [part.score_block(train, device) for part in self.parts]
        ready = [block for block in blocks if block is not None]
        if len(ready) < len(blocks):
            return None
        weights = self.weights

        def block(rows: np.ndarray) -> np.ndarray:
            parts = (w * b(rows) for w, b in zip(weights[1:], ready, strict=True))
            return weights[0] + sum(parts)

        return block

    def input_width(self) -> int | None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "blend": [part.describe() for part in self.parts]}

    @classmethod
    def rebuild(
        cls, described: dict[str, Any], part_from: Callable[[dict[str, Any]], Recommender]
    ) -> Recommender:
        return cls([_autoencoder(part_from(part)) for part in described["blend"]])

    @classmethod
    def for_preset(
        cls, preset: Preset, fit: CsrMatrix, part_for: Callable[[str], Recommender]
    ) -> Recommender:
        parts = [_autoencoder(part_for(name)) for name in preset.blend]
        return cls(parts, [PRESETS[name].train for name in preset.blend])


def _autoencoder(part: Recommender) -> AutoEncoderKind:
    if not isinstance(part, AutoEncoderKind):
        raise ValueError(f"a blend's parts are autoencoders, not {part.name}")
    return part
