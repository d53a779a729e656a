"""Mult-VAE (Liang et al. 2018): Mult-DAE's multinomial likelihood with a Gaussian code.

The encoder gives each user a posterior N(mu, sigma^2) over the code; training decodes a
sample of it and adds beta times its KL divergence from N(0, I), beta rising linearly
from 0 to `kl_cap` over `kl_anneal_steps` batches. Scoring decodes mu (no sampling), so
the exported graph is deterministic and reads the same sparse input as Mult-DAE's.
Selected by validation NDCG@10; scores are logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from aerec.train.config import ModelConfig
from aerec.train.kinds.multinomial import MultinomialAutoEncoder
from aerec.train.model import AutoEncoder, InputTransform, Network, RatedSetInput
from aerec.train.rows import RatedRows
from aerec.train.trainable import TrainStep


@dataclass(frozen=True)
class Posterior:
    """A batch's Gaussian posteriors over the code and the sample a training pass decoded."""

    mean: torch.Tensor  # [batch, code]
    log_variance: torch.Tensor
    sample: torch.Tensor

    def kl_from_standard_normal(self) -> torch.Tensor:
        """Each row's KL(N(mean, variance) || N(0, I)), in closed form: [batch]."""
        terms = self.mean**2 + self.log_variance.exp() - self.log_variance - 1
        return 0.5 * terms.sum(dim=1)


class VariationalAutoEncoder(AutoEncoder):
    """An untied autoencoder whose last encoder layer gives the code's mean and log
    variance (no activation on it); after a training forward pass `posterior` holds the
    batch's posteriors and the sample that was decoded."""

    posterior: Posterior | None

    def __init__(self, config: ModelConfig, inputs: InputTransform | None = None) -> None:
        if config.tied:
            raise ValueError("a variational autoencoder has an untied decoder (tied: false)")
        super().__init__(config, inputs)
        last = self.encoder[-1]
        assert isinstance(last, nn.Linear)
        self.encoder[-1] = nn.Linear(last.in_features, 2 * last.out_features)
        self.posterior = None

    def encode(self, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The code's mean and log variance from the first layer's output."""
        hidden = first
        for layer in self.encoder[1:]:
            assert isinstance(layer, nn.Linear)
            hidden = layer(self.activation(hidden))
        mean, log_variance = hidden.chunk(2, dim=1)
        return mean, log_variance

    def posterior_rows(self, rows: RatedRows) -> tuple[torch.Tensor, torch.Tensor]:
        """The code's mean and log variance for a batch, without noise or dropout."""
        return self.encode(self._first_layer_rows(rows, dropout=False))

    def _after_first_layer(self, pre: torch.Tensor) -> torch.Tensor:
        mean, log_variance = self.encode(pre)
        code = mean
        if self.training:
            code = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
            self.posterior = Posterior(mean, log_variance, code)
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
        assert isinstance(network, VariationalAutoEncoder) and network.posterior is not None
        kl = network.posterior.kl_from_standard_normal()
        return likelihood + self.kl_weight(step) * kl.mean()
