"""The autoencoder: a rating vector in, a reconstruction (or item logits) out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}
LIKELIHOODS = ("mse", "multinomial")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of an AutoEncoder; stored as config.json beside the weights.

    likelihood "mse" reconstructs ratings (masked MSE); "multinomial" (Mult-DAE) reads the
    L2-normalised set of rated items and outputs logits over all items.
    item_based models read one item's ratings by all users (I-AutoRec) and cannot score
    user vectors.
    """

    n_items: int  # width of the input vector (users, for an item-based model)
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    activation: str = "selu"
    code_dropout: float = 0.0
    input_dropout: float = 0.0
    input_noise: float = 0.0  # std of Gaussian noise added to observed inputs in training
    output_activation: str = "identity"
    tied: bool = False
    likelihood: str = "mse"
    item_based: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> ModelConfig:
        return cls(**values)  # type: ignore[arg-type]


class AutoEncoder(nn.Module):
    """Encoder layers down to the code, a mirrored (optionally tied) decoder back out."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.activation not in ACTIVATIONS or config.output_activation not in ACTIVATIONS:
            raise ValueError(f"activations must be among {sorted(ACTIVATIONS)}")
        if config.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}")
        self.config = config
        sizes = [config.n_items, *config.hidden]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        reverse = sizes[::-1]
        if config.tied:
            self.decoder_bias = nn.ParameterList(nn.Parameter(torch.zeros(b)) for b in reverse[1:])
        else:
            self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(reverse))
        self.activation = ACTIVATIONS[config.activation]()
        self.output_activation = ACTIVATIONS[config.output_activation]()
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.code_dropout = nn.Dropout(config.code_dropout)

    def _decoder_layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.config.tied:
            weights = [layer.weight.t() for layer in reversed(self.encoder)]
            return list(zip(weights, self.decoder_bias, strict=True))
        return [(layer.weight, layer.bias) for layer in self.decoder]

    def forward(self, ratings: torch.Tensor) -> torch.Tensor:
        multinomial = self.config.likelihood == "multinomial"
        # Mult-DAE reads the rated set scaled to unit length; the scale is applied after the
        # first layer, x / |x| @ W = (x @ W) / |x|, which saves a pass over the wide input.
        hidden = (ratings != 0).to(ratings.dtype) if multinomial else ratings
        if multinomial:
            scale = torch.rsqrt(torch.clamp(hidden.sum(dim=1, keepdim=True), min=1e-12))
        if self.training and self.config.input_noise > 0:
            hidden = hidden + torch.randn_like(hidden) * self.config.input_noise * (hidden != 0)
        hidden = self.input_dropout(hidden)
        for n, layer in enumerate(self.encoder):
            if n == 0 and multinomial:
                hidden = self.activation(F.linear(hidden, layer.weight) * scale + layer.bias)
            else:
                hidden = self.activation(layer(hidden))
        hidden = self.code_dropout(hidden)
        decoder = self._decoder_layers()
        for n, (weight, bias) in enumerate(decoder):
            hidden = F.linear(hidden, weight, bias)
            last = n == len(decoder) - 1
            hidden = self.output_activation(hidden) if last else self.activation(hidden)
        return hidden


class Ensemble(nn.Module):
    """The mean output of several autoencoders of one shape, trained with different seeds."""

    def __init__(self, members: list[AutoEncoder]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.config = members[0].config

    def forward(self, ratings: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(ratings) for member in self.members]).mean(dim=0)


Recommender = AutoEncoder | Ensemble


def build_model(config: ModelConfig, members: int = 1) -> Recommender:
    """One autoencoder, or an ensemble of `members` of them."""
    if members == 1:
        return AutoEncoder(config)
    return Ensemble([AutoEncoder(config) for _ in range(members)])
