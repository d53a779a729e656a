"""Mult-DAE (Liang et al. 2018): item logits under the multinomial likelihood of the
rated set, items rated below the positive threshold down-weighted as the config says;
selected by validation NDCG@10; scores are logits (they rank, they are not ratings)."""

from __future__ import annotations

import torch

from aerec.data.csr import CsrMatrix
from aerec.train.kinds.autoencoder import AutoEncoderKind
from aerec.train.loss import multinomial_nll, rating_weights
from aerec.train.metrics import evaluate_ranking, positive_threshold
from aerec.train.model import Network, RatedSetInput
from aerec.train.predict import model_scores
from aerec.train.rows import RatedRows
from aerec.train.trainable import Selection, TrainStep


class MultinomialAutoEncoder(AutoEncoderKind):
    name = "mult-dae"
    predicts_ratings = False
    score_meaning = "logit"
    inputs = RatedSetInput

    @property
    def selection(self) -> Selection:
        return Selection("val_ndcg@10", higher_is_better=True)

    def loss(self, network: Network, batch: RatedRows, step: TrainStep) -> torch.Tensor:
        config = self.config
        weights = rating_weights(batch.values, config.positive_rating, config.below_positive_weight)
        return multinomial_nll(network.forward_rows(batch), batch.columns, weights)

    def validate(
        self, network: Network, fit: CsrMatrix, validation: CsrMatrix, device: str
    ) -> float:
        threshold = positive_threshold(float(fit.data.max()))
        block = lambda rows: model_scores(network, fit, rows, device)  # noqa: E731
        return evaluate_ranking(block, fit, validation, 10, threshold=threshold)["ndcg@10"]
