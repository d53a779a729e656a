"""The scoring graph as a torch module: what export-onnx traces."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aerec.train.model import Network


class ScoringGraph(nn.Module):
    """A batch's stored ratings -> (scores [batch, k], items [batch, k] external ids).

    Inputs follow aerec.contracts.GRAPH_INPUTS: columns and values [batch, width]. Items
    the user already rated score -inf, so they never rank above an unrated item (padding
    repeats a rated column, so every write is -inf); rows with fewer than k unrated items
    carry -inf scores the scorer drops.
    """

    item_ids: torch.Tensor

    def __init__(self, model: Network, item_ids: np.ndarray, k: int) -> None:
        super().__init__()
        if not 1 <= k <= len(item_ids):
            raise ValueError(f"k={k} must lie between 1 and the {len(item_ids)} items")
        self.model = model.eval()
        self.k = k
        self.register_buffer("item_ids", torch.from_numpy(np.asarray(item_ids, dtype=np.int64)))

    def forward(
        self, columns: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        predicted = self.model.forward_sparse(columns, values)
        masked = predicted.scatter(1, columns, float("-inf"))
        scores, index = torch.topk(masked, self.k, dim=1)
        return scores, self.item_ids[index]
