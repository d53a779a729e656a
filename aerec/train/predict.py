"""Running a trained autoencoder over CSR rows: dense scores and predictions at entries."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aerec.data.csr import CsrMatrix, batches


def model_scores(
    model: nn.Module, inputs: CsrMatrix, rows: np.ndarray, device: str = "cpu"
) -> np.ndarray:
    """Dense model output [len(rows), n_cols] for the given input rows."""
    model.eval()
    with torch.no_grad():
        dense = torch.from_numpy(inputs.densify(rows)).to(device)
        return model(dense).cpu().numpy()


def predict_observed(
    model: nn.Module, inputs: CsrMatrix, targets: CsrMatrix, device: str, batch_size: int = 512
) -> np.ndarray:
    """Model predictions at every stored entry of `targets`, in targets.data order."""
    out = np.empty(targets.nnz, dtype=np.float32)
    for block in batches(np.flatnonzero(targets.row_counts()), batch_size):
        predicted = model_scores(model, inputs, block, device)
        for n, row in enumerate(block):
            start, stop = targets.indptr[row], targets.indptr[row + 1]
            out[start:stop] = predicted[n, targets.indices[start:stop]]
    return out
