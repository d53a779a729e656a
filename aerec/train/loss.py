"""Masked MSE over observed ratings only, normalised by their count."""

from __future__ import annotations

import torch


def masked_mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where target is non-zero (observed)."""
    mask = target != 0
    observed = mask.sum()
    if observed == 0:
        return predicted.sum() * 0.0
    return ((predicted - target) ** 2 * mask).sum() / observed
