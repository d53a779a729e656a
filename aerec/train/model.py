"""The autoencoder network: a rating vector in, a reconstruction (or item logits) out."""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from aerec.train.config import ModelConfig

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}


def _linears(layers: nn.ModuleList) -> list[nn.Linear]:
    return [layer for layer in layers if isinstance(layer, nn.Linear)]


class AutoEncoder(nn.Module):
    """Encoder layers down to the code, a mirrored (optionally tied) decoder back out."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        sizes = [config.n_items, *config.hidden]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))
        reverse = sizes[::-1]
        self.decoder_bias: nn.ParameterList | None = None
        self.decoder: nn.ModuleList | None = None
        if config.tied:
            self.decoder_bias = nn.ParameterList(nn.Parameter(torch.zeros(b)) for b in reverse[1:])
        else:
            self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(reverse))
        self.activation = ACTIVATIONS[config.activation]()
        self.output_activation = ACTIVATIONS[config.output_activation]()
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.code_dropout = nn.Dropout(config.code_dropout)

    def _decoder_layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.decoder_bias is not None:
            weights = [layer.weight.t() for layer in reversed(_linears(self.encoder))]
            return list(zip(weights, self.decoder_bias, strict=True))
        assert self.decoder is not None
        return [(layer.weight, layer.bias) for layer in _linears(self.decoder)]

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
        first = _linears(self.encoder)[0]
        if multinomial:
            return self._after_first_layer(F.linear(hidden, first.weight) * scale + first.bias)
        return self._after_first_layer(first(hidden))

    def forward_sparse(self, columns: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """forward() in eval mode for a batch given as each user's rated item columns and
        ratings, [batch, width], padded with value 0.

        The first layer gathers one weight column per rating instead of multiplying a dense
        [batch, n_items] input: its cost is O(batch x width x hidden), not
        O(batch x n_items x hidden). The per-user sum is a batched product, which runs
        the same way every time (no scatter-add, whose threads race in ONNX Runtime).
        """
        first = _linears(self.encoder)[0]
        multinomial = self.config.likelihood == "multinomial"
        inputs = (values != 0).to(values.dtype) if multinomial else values
        gathered = first.weight.t()[columns]  # [batch, width, hidden]
        pre = torch.matmul(inputs.unsqueeze(1), gathered).squeeze(1)
        if multinomial:
            counts = inputs.sum(dim=1, keepdim=True)
            pre = pre * torch.rsqrt(torch.clamp(counts, min=1e-12))
        return self._after_first_layer(pre + first.bias)

    def _after_first_layer(self, pre: torch.Tensor) -> torch.Tensor:
        """The activation of the first layer's output, the other layers, and the decoder."""
        hidden = self.activation(pre)
        for layer in _linears(self.encoder)[1:]:
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

    def __init__(self, members: list[Network]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.config: ModelConfig = members[0].config

    def forward(self, ratings: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(ratings) for member in self.members]).mean(dim=0)

    def forward_sparse(self, columns: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        members = [m for m in self.members if isinstance(m, AutoEncoder | Ensemble)]
        outputs = [m.forward_sparse(columns, values) for m in members]
        return torch.stack(outputs).mean(dim=0)


Network = AutoEncoder | Ensemble


def build_network(config: ModelConfig, members: int = 1) -> Network:
    """One autoencoder, or an ensemble of `members` of them."""
    if members == 1:
        return AutoEncoder(config)
    return Ensemble([AutoEncoder(config) for _ in range(members)])
