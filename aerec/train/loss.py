"""Training objectives: masked MSE over observed ratings, and the multinomial likelihood."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where target is non-zero (observed)."""
    mask = target != 0
    observed = mask.sum()
    if observed == 0:
        return predicted.sum() * 0.0
    return ((predicted - target) ** 2 * mask).sum() / observed


def rating_weights(target: torch.Tensor, positive: float, below: float) -> torch.Tensor:
    """Each rated item's weight in the likelihood: 1 from `positive` up, `below` under it,
    0 where not rated."""
    return torch.where(target >= positive, 1.0, below) * (target != 0)


def multinomial_nll(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mult-DAE's loss: minus the log-likelihood of each user's rated items (each item
    counted with its weight), averaged over users."""
    return -(F.log_softmax(logits, dim=1) * weights).sum(dim=1).mean()
