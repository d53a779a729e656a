"""RecVAE (Shenbin et al. 2020): Mult-VAE with a denser encoder, a composite prior, a KL
weight that grows with the user's ratings, and alternating encoder and decoder updates.

- Encoder: the rated set scaled to unit length with dropout on it, then layers of one
  width, each layer_norm(swish(linear(h) + the sum of the earlier layers' outputs)); a
  last linear layer gives the code's mean and log variance. Decoder: one linear layer to
  the item logits.
- Prior: a mixture of N(0, I), the posterior the encoder gave the same user before this
  epoch, and a wide N(0, e^10 I), weighted 3/20, 3/4 and 1/10 (the paper's).
- KL: log q(z|x) - log p(z) at the sampled code z, times beta = kl_gamma x the user's
  total likelihood weight (the number of rated items when every one counts 1).
- Each epoch: `encoder_passes` passes updating the encoder (input dropout on), then one
  pass updating the decoder (no dropout; its loss is the likelihood alone, as the KL term
  has no gradient there), each with its own optimiser.

Scoring decodes the code's mean, as Mult-VAE does, so the exported graph reads the same
sparse input. Selected by validation NDCG@10; scores are logits.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from aerec.train.config import ModelConfig
from aerec.train.kinds.multinomial import MultinomialAutoEncoder
from aerec.train.kinds.variational import VariationalAutoEncoder
from aerec.train.loss import multinomial_nll, rating_weights
from aerec.train.model import InputTransform, Network, RatedSetInput
from aerec.train.rows import RatedRows
from aerec.train.trainable import Phase, TrainStep

ENCODER, DECODER = "encoder", "decoder"
LAYER_NORM_EPS = 0.1
# log weights of the prior's parts: N(0, I), the previous posterior, N(0, e^10 I)
PRIOR_LOG_WEIGHTS = tuple(math.log(w) for w in (3 / 20, 3 / 4, 1 / 10))
WIDE_LOG_VARIANCE = 10.0


def log_normal(x: torch.Tensor, mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """The log density of N(mean, exp(log_variance)) at x, elementwise."""
    return -0.5 * (log_variance + math.log(2 * math.pi) + (x - mean) ** 2 / log_variance.exp())


def composite_log_prior(
    code: torch.Tensor, previous_mean: torch.Tensor, previous_log_variance: torch.Tensor
) -> torch.Tensor:
    """log p(code) under RecVAE's mixture prior, per code dimension: [batch, code]."""
    zero = torch.zeros_like(code)
    parts = (
        log_normal(code, zero, zero),
        log_normal(code, previous_mean, previous_log_variance),
        log_normal(code, zero, zero + WIDE_LOG_VARIANCE),
    )
    weighted = [part + weight for part, weight in zip(parts, PRIOR_LOG_WEIGHTS, strict=True)]
    return torch.logsumexp(torch.stack(weighted, dim=-1), dim=-1)


class RecVAENetwork(VariationalAutoEncoder):
    """`hidden` is the encoder's layer widths (all equal) then the code's size."""

    def __init__(self, config: ModelConfig, inputs: InputTransform | None = None) -> None:
        widths = config.hidden[:-1]
        if not widths or len(set(widths)) != 1:
            raise ValueError(
                f"RecVAE hidden {config.hidden!r}: expected layers of one width, then the "
                "code's size (e.g. [600, 600, 600, 600, 600, 200])"
            )
        super().__init__(config, inputs)
        self.norms = nn.ModuleList(nn.LayerNorm(width, eps=LAYER_NORM_EPS) for width in widths)
        self.decoder = nn.ModuleList([nn.Linear(config.hidden[-1], config.n_items)])

    def encode(self, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.norms[0](self.activation(first))
        earlier = hidden
        for layer, norm in zip(self.encoder[1:-1], self.norms[1:], strict=True):
            hidden = norm(self.activation(layer(hidden) + earlier))
            earlier = earlier + hidden
        mean, log_variance = self.encoder[-1](hidden).chunk(2, dim=1)
        return mean, log_variance


class RecVAE(MultinomialAutoEncoder):
    name = "recvae"

    _previous: RecVAENetwork | None = None  # the network as it was before this epoch

    def new_network(self) -> Network:
        return RecVAENetwork(self.config, RatedSetInput())

    def phases(self, network: Network) -> list[Phase]:
        assert isinstance(network, RecVAENetwork) and network.decoder is not None
        decoder = list(network.decoder.parameters())
        own = {id(parameter) for parameter in decoder}
        encoder = [p for p in network.parameters() if id(p) not in own]
        return [Phase(ENCODER, encoder, self.config.encoder_passes), Phase(DECODER, decoder)]

    def start_epoch(self, network: Network) -> None:
        """Keep a frozen copy of the network: its encoder is the prior's previous posterior."""
        assert isinstance(network, RecVAENetwork)
        network.posterior = None  # the last batch's tensors belong to its graph
        self._previous = copy.deepcopy(network).eval().requires_grad_(False)

    def loss(self, network: Network, batch: RatedRows, step: TrainStep) -> torch.Tensor:
        assert isinstance(network, RecVAENetwork)
        config = self.config
        weights = rating_weights(batch.values, config.positive_rating, config.below_positive_weight)
        logits = network.forward_rows(batch, dropout=step.phase == ENCODER)
        likelihood = multinomial_nll(logits, batch.columns, weights)
        if step.phase == DECODER:
            return likelihood
        posterior, previous = network.posterior, self._previous
        assert posterior is not None and previous is not None, "start_epoch comes first"
        with torch.no_grad():
            previous_mean, previous_log_variance = previous.posterior_rows(batch)
        code = posterior.sample
        kl = log_normal(code, posterior.mean, posterior.log_variance) - composite_log_prior(
            code, previous_mean, previous_log_variance
        )
        beta = config.kl_gamma * weights.sum(dim=1)
        return likelihood + (beta * kl.sum(dim=1)).mean()
