"""Rating autoencoders: reconstruct a user's ratings under masked MSE (U-AutoRec,
DeepRecommender, the seeds); selected by validation RMSE; scores are predicted ratings."""

from __future__ import annotations

import numpy as np
import torch

from aerec.data.csr import CsrMatrix
from aerec.train.kinds.autoencoder import AutoEncoderKind
from aerec.train.loss import masked_mse
from aerec.train.metrics import rmse
from aerec.train.model import Network
from aerec.train.predict import predict_observed
from aerec.train.rows import RatedRows
from aerec.train.trainable import Selection, TrainStep


class RatingAutoEncoder(AutoEncoderKind):
    name = "rating-ae"
    predicts_ratings = True
    score_meaning = "rating"

    @property
    def selection(self) -> Selection:
        return Selection("val_rmse", higher_is_better=False)

    def loss(self, network: Network, batch: RatedRows, step: TrainStep) -> torch.Tensor:
        return masked_mse(batch.at(network.forward_rows(batch)), batch.values)

    def validate(
        self, network: Network, fit: CsrMatrix, validation: CsrMatrix, device: str
    ) -> float:
        predicted = predict_observed(network, fit, validation, device)
        scale = (float(fit.data.min()), float(fit.data.max()))
        return rmse(np.clip(predicted, *scale), validation.data)
