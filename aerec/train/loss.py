"""Training objectives: masked MSE over observed ratings, and the multinomial likelihood."""

from __future__ import annotations

from typing import Any

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


class _MultinomialNll(torch.autograd.Function):
    """multinomial_nll with one [batch, n_items] buffer: forward keeps exp(z - max z),
    and backward turns it in place into the gradient, (sum_j w_j) softmax(z) minus w at
    the rated columns. Autograd's logsumexp, gather and sum allocate three more and pass
    over them (`bench/train.py --loss-only`: 6.5 ms against 23.4 ms at [128, 59,047])."""

    @staticmethod
    def forward(
        ctx: Any, logits: torch.Tensor, columns: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        top = logits.amax(dim=1, keepdim=True)
        shifted = logits.sub(top).exp_()  # exp(z - max): the softmax before its division
        sums = shifted.sum(dim=1)
        log_total = sums.log().add_(top.squeeze(1))
        totals = weights.sum(dim=1)
        picked = (logits.gather(1, columns) * weights).sum(dim=1)
        ctx.save_for_backward(shifted, sums, columns, weights, totals)
        return (totals * log_total - picked).mean()

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        # the saved exponentials become the gradient in place: a second backward through
        # the same graph raises (torch sees the saved tensor modified)
        shifted, sums, columns, weights, totals = ctx.saved_tensors
        scale = grads[0] / shifted.shape[0]
        gradient = shifted.mul_((totals * scale / sums)[:, None])
        return gradient.scatter_add_(1, columns, weights * -scale), None, None


def multinomial_nll(
    logits: torch.Tensor, columns: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Mult-DAE's loss: minus the log-likelihood of each user's rated items (each item
    counted with its weight), averaged over users. `logits` are [batch, n_items];
    `columns` and `weights` [batch, width] name the rated items and weigh them.

    sum_j w_j log_softmax(z)_j = sum_j w_j z_j - (sum_j w_j) logsumexp(z): the wide
    logits are read at the rated columns and once for their logsumexp."""
    # in float32 even under bfloat16 autocast: a log-sum over every item needs its bits
    loss = _MultinomialNll.apply(logits.float(), columns, weights.float())
    assert isinstance(loss, torch.Tensor)
    return loss
