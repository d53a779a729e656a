"""Mult-VAE (Liang et al. 2018): Mult-DAE's multinomial likelihood with a Gaussian code.

The encoder gives each user a posterior N(mu, sigma^2) over the code; training decodes a
sample of it and adds beta times its KL divergence from N(0, I), beta rising linearly
from 0 to `kl_cap` over `kl_anneal_steps` batches. Scoring decodes mu (no sampling), so
the exported graph is deterministic and reads the same sparse input as Mult-DAE's.
Selected by validation NDCG@10; scores are logits.
"""

from __future__ import annotations

import torch
from torch import nn

from aerec.train.config import ModelConfig
from aerec.train.kinds.multinomial import MultinomialAutoEncoder
from aerec.train.model import AutoEncoder, InputTransform, Network, RatedSetInput
from aerec.train.rows import RatedRows
from aerec.train.trainable import TrainStep


class VariationalAutoEncoder(AutoEncoder):
    """An untied autoencoder whose last encoder layer gives the code's mean and log
    variance (no activation on it); after a training forward pass `kl` holds each row's
    KL divergence from the standard normal prior."""

    kl: torch.Tensor | None

    def __init__(self, config: ModelConfig, inputs: InputTransform | None = None) -> None:
        if config.tied:
            raise ValueError("a variational autoencoder has an untied decoder (tied: false)")
        super().__init__(config, inputs)
        last = self.encoder[-1]
        assert isinstance(last, nn.Linear)
        self.encoder[-1] = nn.Linear(last.in_features, 2 * last.out_features)
        self.kl = None

    def _after_first_layer(self, pre: torch.Tensor) -> torch.Tensor:
        hidden = pre
        for layer in self.encoder[1:]:
            assert isinstance(layer, nn.Linear)
            hidden = layer(self.activation(hidden))
        mean, log_variance = hidden.chunk(2, dim=1)
        code = mean
        if self.training:
            self.kl = 0.5 * (mean**2 + log_variance.exp() - log_variance - 1).sum(dim=1)
            code = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        return self._decode(self.code_dropout(code))


class VariationalMultinomial(MultinomialAutoEncoder):
    name = "mult-vae"

    def new_network(self) -> Network:
        return VariationalAutoEncoder(self.config, RatedSetInput())

    def kl_weight(self, step: TrainStep) -> float:
        """beta of this batch: from 0 up to the cap over the annealing steps."""
        config = self.config
        if config.kl_anneal_steps == 0:
            return config.kl_cap
        return config.kl_cap * min(1.0, step.step / config.kl_anneal_steps)

    def loss(self, network: Network, batch: RatedRows, step: TrainStep) -> torch.Tensor:
        likelihood = super().loss(network, batch, step)
        assert isinstance(network, VariationalAutoEncoder) and network.kl is not None
        return likelihood + self.kl_weight(step) * network.kl.mean()
