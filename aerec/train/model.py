"""The autoencoder: rating vector in, reconstructed rating vector out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import pairwise

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}


@dataclass(frozen=True)
class ModelConfig:
    """Shape of an AutoEncoder; stored as config.json beside the weights."""

    n_items: int
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    activation: str = "selu"
    code_dropout: float = 0.0
    input_dropout: float = 0.0
    output_activation: str = "identity"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> ModelConfig:
        return cls(**values)  # type: ignore[arg-type]


class AutoEncoder(nn.Module):
    """Encoder layers down to the code, mirrored decoder back to n_items."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.activation not in ACTIVATIONS or config.output_activation not in ACTIVATIONS:
            raise ValueError(f"activations must be among {sorted(ACTIVATIONS)}")
        self.config = config
        sizes = [config.n_items, *config.hidden]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        reverse = sizes[::-1]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(reverse))
        self.activation = ACTIVATIONS[config.activation]()
        self.output_activation = ACTIVATIONS[config.output_activation]()
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.code_dropout = nn.Dropout(config.code_dropout)

    def forward(self, ratings: torch.Tensor) -> torch.Tensor:
        hidden = self.input_dropout(ratings)
        for layer in self.encoder:
            hidden = self.activation(layer(hidden))
        hidden = self.code_dropout(hidden)
        for n, layer in enumerate(self.decoder):
            last = n == len(self.decoder) - 1
            hidden = layer(hidden)
            hidden = self.output_activation(hidden) if last else self.activation(hidden)
        return hidden
