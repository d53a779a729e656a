"""Mini-batch training of the autoencoder with early stopping on a validation slice."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch

from aerec.data.csr import CsrMatrix
from aerec.errors import InputError
from aerec.train.loss import masked_mse
from aerec.train.model import AutoEncoder, ModelConfig

log = logging.getLogger(__name__)

Progress = Callable[[Iterable[np.ndarray], str, int], Iterable[np.ndarray]]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; stored in config.json."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    patience: int = 5
    validation_fraction: float = 0.05

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class TrainResult:
    model: AutoEncoder
    history: list[dict[str, float]]
    best_epoch: int
    device: str


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when torch sees a GPU; 'cuda' without one is an error."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device {device!r}: expected auto, cpu or cuda")
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise InputError("--device cuda: torch sees no CUDA device (is the CUDA build installed?)")
    return "cuda" if device == "auto" and cuda else ("cpu" if device == "auto" else device)


def batches(rows: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def predict_observed(
    model: AutoEncoder, inputs: CsrMatrix, targets: CsrMatrix, device: str, batch_size: int = 512
) -> np.ndarray:
    """Model predictions at every stored entry of `targets`, in targets.data order."""
    model.eval()
    out = np.empty(targets.nnz, dtype=np.float32)
    rows = np.flatnonzero(targets.row_counts())
    buffer = np.zeros((batch_size, inputs.n_cols), dtype=np.float32)
    with torch.no_grad():
        for block in batches(rows, batch_size):
            dense = torch.from_numpy(inputs.densify(block, buffer)).to(device)
            predicted = model(dense).cpu().numpy()
            for n, row in enumerate(block):
                start, stop = targets.indptr[row], targets.indptr[row + 1]
                out[start:stop] = predicted[n, targets.indices[start:stop]]
    return out


def rmse_at(model: AutoEncoder, inputs: CsrMatrix, targets: CsrMatrix, device: str) -> float:
    predicted = predict_observed(model, inputs, targets, device)
    return float(np.sqrt(np.mean((predicted - targets.data) ** 2)))


def train_autoencoder(
    fit: CsrMatrix,
    validation: CsrMatrix,
    model_config: ModelConfig,
    config: TrainConfig,
    device: str = "auto",
    progress: Progress | None = None,
) -> TrainResult:
    """Train on `fit`; after each epoch score `validation` from the `fit` vectors.

    The weights of the epoch with the lowest validation RMSE are kept; training stops
    after `patience` epochs without improvement.
    """
    device = resolve_device(device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = AutoEncoder(model_config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rows = np.flatnonzero(fit.row_counts())
    buffer = np.zeros((config.batch_size, fit.n_cols), dtype=np.float32)
    history: list[dict[str, float]] = []
    best = (float("inf"), 0, copy.deepcopy(model.state_dict()))
    for epoch in range(1, config.epochs + 1):
        model.train()
        started = time.perf_counter()
        order = rng.permutation(rows)
        steps = batches(order, config.batch_size)
        if progress is not None:
            n_batches = -(-len(order) // config.batch_size)
            steps = progress(steps, f"epoch {epoch}/{config.epochs}", n_batches)
        total, count = 0.0, 0
        for block in steps:
            dense = torch.from_numpy(fit.densify(block, buffer)).to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = masked_mse(model(dense), dense)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(block)
            count += len(block)
        val_rmse = rmse_at(model, fit, validation, device)
        seconds = time.perf_counter() - started
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / max(count, 1),
                "val_rmse": val_rmse,
                "seconds": seconds,
            }
        )
        log.info(
            "epoch %d: train loss %.4f, validation RMSE %.4f (%.1f s)",
            epoch,
            total / max(count, 1),
            val_rmse,
            seconds,
        )
        if val_rmse < best[0]:
            best = (val_rmse, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= config.patience:
            log.info("no validation improvement for %d epochs: stopping", config.patience)
            break
    model.load_state_dict(best[2])
    model.eval()
    return TrainResult(model=model.cpu(), history=history, best_epoch=best[1], device=device)
