"""The scoring graph as a torch module: what export-onnx traces."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ScoringGraph(nn.Module):
    """ratings [batch, n_items] -> (scores [batch, k], items [batch, k] external ids).

    Items the user already rated (non-zero input) score -inf, so they never rank above an
    unrated item; rows with fewer than k unrated items carry -inf scores the scorer drops.
    """

    item_ids: torch.Tensor

    def __init__(self, model: nn.Module, item_ids: np.ndarray, k: int) -> None:
        super().__init__()
        if not 1 <= k <= len(item_ids):
            raise ValueError(f"k={k} must lie between 1 and the {len(item_ids)} items")
        self.model = model.eval()
        self.k = k
        self.register_buffer("item_ids", torch.from_numpy(np.asarray(item_ids, dtype=np.int64)))

    def forward(self, ratings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        predicted = self.model(ratings)
        # where(unrated, score, -inf): one comparison and one select over the wide output
        masked = torch.where(ratings == 0, predicted, float("-inf"))
        scores, index = torch.topk(masked, self.k, dim=1)
        return scores, self.item_ids[index]
