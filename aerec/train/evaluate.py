"""Rating-prediction metrics on a held-out split, with same-run baselines."""

from __future__ import annotations

import numpy as np

from aerec.data.csr import CsrMatrix
from aerec.train.model import AutoEncoder
from aerec.train.trainer import predict_observed


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted - actual)))


def rating_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE and MAE of predictions clipped to the rating scale."""
    clipped = np.clip(predicted, 0.5, 5.0)
    return {"rmse": rmse(clipped, actual), "mae": mae(clipped, actual)}


def evaluate_autoencoder(
    model: AutoEncoder, train: CsrMatrix, test: CsrMatrix, device: str = "cpu"
) -> dict[str, float]:
    """Predict each test rating from the user's training vector only."""
    return rating_metrics(predict_observed(model, train, test, device), test.data)


def global_mean_baseline(train: CsrMatrix, test: CsrMatrix) -> dict[str, float]:
    """Every test rating predicted as the training mean."""
    return rating_metrics(np.full(test.nnz, train.data.mean(), dtype=np.float32), test.data)
