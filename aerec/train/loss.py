"""Training objectives: masked MSE over observed ratings, and the multinomial likelihood."""

from __future__ import annotations

import torch


def masked_mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where target is non-zero (observed): dense rows,
    or the predictions at a batch's rated columns and its values."""
    mask = target != 0
    observed = mask.sum()
    if observed == 0:
        return predicted.sum() * 0.0
    return ((predicted - target) ** 2 * mask).sum() / observed


def rating_weights(target: torch.Tensor, positive: float, below: float) -> torch.Tensor:
    """Each rated item's weight in the likelihood: 1 from `positive` up, `below` under it,
    0 where not rated."""
    return torch.where(target >= positive, 1.0, below) * (target != 0)


def multinomial_nll(
    logits: torch.Tensor, columns: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Mult-DAE's loss: minus the log-likelihood of each user's rated items (each item
    counted with its weight), averaged over users. `logits` are [batch, n_items];
    `columns` and `weights` [batch, width] name the rated items and weigh them.

    sum_j w_j log_softmax(z)_j = sum_j w_j z_j - (sum_j w_j) logsumexp(z): one pass over
    the wide logits, not a [batch, n_items] log_softmax and weight matrix."""
    picked = (logits.gather(1, columns) * weights).sum(dim=1)
    return (weights.sum(dim=1) * torch.logsumexp(logits, dim=1) - picked).mean()
