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


def multinomial_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mult-DAE's loss: minus the log-likelihood of each user's rated items, averaged."""
    return -(F.log_softmax(logits, dim=1) * (target != 0)).sum(dim=1).mean()
