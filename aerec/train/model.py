"""The autoencoder network: a rating vector in, a reconstruction (or item logits) out."""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from aerec.train.config import ModelConfig
from aerec.train.rows import RatedRows

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,  # swish: x * sigmoid(x)
    "identity": nn.Identity,
}


def _linears(layers: nn.ModuleList) -> list[nn.Linear]:
    return [layer for layer in layers if isinstance(layer, nn.Linear)]


class InputTransform(nn.Module):
    """How a network reads a row: its ratings as they are (a kind may read them otherwise).
    `values` is what the first layer multiplies; `scaled` adjusts its product."""

    def values(self, ratings: torch.Tensor) -> torch.Tensor:
        return ratings

    def scaled(self, product: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return product


class RatedSetInput(InputTransform):
    """Mult-DAE's input: the rated set scaled to unit length. The scale is applied after
    the first layer, x / |x| @ W = (x @ W) / |x|, which saves a pass over the wide input."""

    def values(self, ratings: torch.Tensor) -> torch.Tensor:
        return (ratings != 0).to(ratings.dtype)

    def scaled(self, product: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return product * torch.rsqrt(torch.clamp(values.sum(dim=1, keepdim=True), min=1e-12))


class Network(nn.Module):
    """What a kind trains and export-onnx ships, in three forms of one function: a training
    batch in (`forward_rows`), dense rows in eval mode (`forward`: validation and
    predictions), and each user's rated columns and ratings in eval mode (`forward_sparse`:
    the scoring graph)."""

    config: ModelConfig

    def forward_rows(self, rows: RatedRows, dropout: bool = True) -> torch.Tensor:
        """In training mode, noise and dropout apply unless `dropout` is false."""
        raise NotImplementedError

    def forward_sparse(self, columns: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class AutoEncoder(Network):
    """Encoder layers down to the code, a mirrored (optionally tied) decoder back out."""

    def __init__(self, config: ModelConfig, inputs: InputTransform | None = None) -> None:
        super().__init__()
        self.config = config
        self.inputs = inputs or InputTransform()
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

    def forward_rows(self, rows: RatedRows, dropout: bool = True) -> torch.Tensor:
        """The training forward pass: noise and dropout (unless `dropout` is false) touch
        the rated entries only, then the first layer multiplies the rows made dense."""
        return self._after_first_layer(self._first_layer_rows(rows, dropout))

    def _first_layer_rows(self, rows: RatedRows, dropout: bool) -> torch.Tensor:
        """The first layer's output (before its activation) for a training batch. Its
        weight's gradient is dense either way, and a dense product is faster to
        differentiate than the gather of `forward_sparse` (bench/train.py)."""
        values = self.inputs.values(rows.values)
        hidden = values
        if dropout and self.training and self.config.input_noise > 0:
            hidden = hidden + torch.randn_like(hidden) * self.config.input_noise * (hidden != 0)
        if dropout:
            hidden = self.input_dropout(hidden)
        first = _linears(self.encoder)[0]
        pre = self.inputs.scaled(F.linear(rows.dense(hidden), first.weight), values)
        return pre + first.bias

    def forward(self, ratings: torch.Tensor) -> torch.Tensor:
        """Dense rows in eval mode (no noise, no dropout: `forward_rows` trains)."""
        values = self.inputs.values(ratings)
        first = _linears(self.encoder)[0]
        pre = self.inputs.scaled(F.linear(values, first.weight), values)
        return self._after_first_layer(pre + first.bias)

    def forward_sparse(self, columns: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """forward() in eval mode for a batch given as each user's rated item columns and
        ratings, [batch, width], padded with value 0.

        The first layer gathers one weight column per rating instead of multiplying a dense
        [batch, n_items] input: its cost is O(batch x width x hidden), not
        O(batch x n_items x hidden). The per-user sum is a batched product, which runs
        the same way every time (no scatter-add, whose threads race in ONNX Runtime).
        """
        first = _linears(self.encoder)[0]
        inputs = self.inputs.values(values)
        gathered = first.weight.t()[columns]  # [batch, width, hidden]
        pre = self.inputs.scaled(torch.matmul(inputs.unsqueeze(1), gathered).squeeze(1), inputs)
        return self._after_first_layer(pre + first.bias)

    def _after_first_layer(self, pre: torch.Tensor) -> torch.Tensor:
        """The activation of the first layer's output, the other layers, and the decoder."""
        hidden = self.activation(pre)
        for layer in _linears(self.encoder)[1:]:
            hidden = self.activation(layer(hidden))
        return self._decode(self.code_dropout(hidden))

    def _decode(self, hidden: torch.Tensor) -> torch.Tensor:
        """The decoder's layers from the code to the output."""
        decoder = self._decoder_layers()
        for n, (weight, bias) in enumerate(decoder):
            hidden = F.linear(hidden, weight, bias)
            last = n == len(decoder) - 1
            hidden = self.output_activation(hidden) if last else self.activation(hidden)
        return hidden


class Ensemble(Network):
    """The mean output of several autoencoders of one shape, trained with different seeds."""

    def __init__(self, members: list[Network]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.config: ModelConfig = members[0].config

    def forward(self, ratings: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(ratings) for member in self.members]).mean(dim=0)

    def forward_sparse(self, columns: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        members = [m for m in self.members if isinstance(m, Network)]
        outputs = [m.forward_sparse(columns, values) for m in members]
        return torch.stack(outputs).mean(dim=0)
