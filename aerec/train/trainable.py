"""What the trainer trains: a `Trainable` builds its network, says which of its parameters
each phase of an epoch updates (one phase over all of them, or alternating updates such as
RecVAE's encoder and decoder passes), computes its loss on a batch of `RatedRows` (extra
terms such as a KL divergence with an annealing schedule included: the loss sees where
training is, `TrainStep`) and scores the validation slice. The trainer never looks at what
kind of model it trains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from aerec.data.csr import CsrMatrix
from aerec.train.model import Network
from aerec.train.rows import RatedRows


@dataclass(frozen=True)
class TrainStep:
    """Where training is when a batch's loss is computed."""

    epoch: int  # 1-based
    step: int  # batches seen before this one, over every epoch
    epochs: int  # the epoch limit
    phase: str = "all"  # the name of the epoch's phase this batch trains (Phase.name)

    @property
    def progress(self) -> float:
        """The share of the epoch limit done before this epoch (0 to <1): an annealing
        schedule's clock."""
        return (self.epoch - 1) / max(self.epochs, 1)


@dataclass(frozen=True)
class Phase:
    """One part of an epoch: `passes` passes over the rows, each batch's step updating
    only `parameters` (the others get no gradient) with this phase's own optimiser."""

    name: str
    parameters: list[nn.Parameter]
    passes: int = 1


def every_parameter(network: nn.Module) -> list[Phase]:
    """The usual epoch: one pass updating every parameter."""
    return [Phase("all", list(network.parameters()))]


@dataclass(frozen=True)
class Selection:
    """The validation metric that picks the epoch."""

    metric: str  # val_rmse, val_ndcg@10
    higher_is_better: bool


class Trainable(Protocol):
    """A model the trainer can train, on rows already oriented for it."""

    @property
    def selection(self) -> Selection: ...

    def new_network(self) -> Network:
        """A freshly initialised network (after the trainer has seeded torch)."""
        ...

    def phases(self, network: Network) -> list[Phase]:
        """The phases of every epoch, in order (`every_parameter` for most kinds)."""
        ...

    def start_epoch(self, network: Network) -> None:
        """Called before each epoch's first batch, with the network on its device (a
        kind whose loss reads the previous epoch's weights takes them here)."""
        ...

    def loss(self, network: Network, batch: RatedRows, step: TrainStep) -> torch.Tensor:
        """The training objective of one batch of rows (the input is the target)."""
        ...

    def validate(
        self, network: Network, fit: CsrMatrix, validation: CsrMatrix, device: str
    ) -> float:
        """The selection metric on `validation`, scored from the `fit` rows."""
        ...
