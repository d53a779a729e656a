"""Mini-batch training of the autoencoder with early stopping on a validation slice."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from aerec.data.csr import CsrMatrix
from aerec.errors import InputError
from aerec.train.loss import masked_mse, multinomial_nll
from aerec.train.metrics import evaluate_ranking, rmse
from aerec.train.model import AutoEncoder, ModelConfig, Recommender
from aerec.train.predict import batches, model_scores, predict_observed

log = logging.getLogger(__name__)

Progress = Callable[[Iterable[np.ndarray], str, int], Iterable[np.ndarray]]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; stored in config.json."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0  # the optimiser's decay of every parameter
    l2: float = 0.0  # AutoRec's penalty: l2 * (sum of squared weights), biases exempt
    optimizer: str = "adam"  # adam | sgd (with momentum)
    momentum: float = 0.9
    refeed: bool = False  # DeepRecommender's dense re-feeding: a second step on f(x)
    seed: int = 0
    patience: int = 5
    lr_decay: float = 1.0  # multiply the learning rate by this after 3 epochs without gain

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class TrainResult:
    model: AutoEncoder
    history: list[dict[str, float]]
    best_epoch: int
    device: str
    validation_metric: str


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when torch sees a GPU; 'cuda' without one is an error."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device {device!r}: expected auto, cpu or cuda")
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise InputError("--device cuda: torch sees no CUDA device (is the CUDA build installed?)")
    if device == "auto":
        return "cuda" if cuda else "cpu"
    return device


def validation_score(
    model: Recommender, fit: CsrMatrix, validation: CsrMatrix, device: str
) -> tuple[str, float]:
    """RMSE (rating models) or NDCG@10 (ranking models) of the validation slice, from `fit`."""
    if model.config.likelihood == "mse":
        predicted = predict_observed(model, fit, validation, device)
        return "val_rmse", rmse(np.clip(predicted, 0.5, 5.0), validation.data)
    block = lambda rows: model_scores(model, fit, rows, device)  # noqa: E731
    return "val_ndcg@10", evaluate_ranking(block, fit, validation, 10)["ndcg@10"]


def _optimizer(model: AutoEncoder, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    raise InputError(f"optimizer {config.optimizer!r}: expected adam or sgd")


def _step(
    model: AutoEncoder,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    target: torch.Tensor,
    l2: float,
) -> float:
    loss_fn = multinomial_nll if model.config.likelihood == "multinomial" else masked_mse
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(inputs), target)
    if l2 > 0:
        weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
        loss = loss + l2 * sum(w.pow(2).sum() for w in weights)
    loss.backward()
    optimizer.step()
    return loss.item()


def train_autoencoder(
    fit: CsrMatrix,
    validation: CsrMatrix,
    model_config: ModelConfig,
    config: TrainConfig,
    device: str = "auto",
    progress: Progress | None = None,
) -> TrainResult:
    """Train on the rows of `fit`; after each epoch score `validation` from the `fit` rows.

    The weights of the epoch with the best validation score are kept; training stops after
    `patience` epochs without improvement.
    """
    device = resolve_device(device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = AutoEncoder(model_config).to(device)
    optimizer = _optimizer(model, config)
    scheduler = None
    if config.lr_decay < 1.0:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.lr_decay, patience=2
        )
    rows = np.flatnonzero(fit.row_counts())
    buffer = np.zeros((config.batch_size, fit.n_cols), dtype=np.float32)
    history: list[dict[str, float]] = []
    sign = 1.0 if model_config.likelihood == "mse" else -1.0  # RMSE falls, NDCG rises
    best: tuple[float, int, dict] = (float("inf"), 0, {})
    metric = "val_rmse"
    for epoch in range(1, config.epochs + 1):
        model.train()
        started = time.perf_counter()
        steps: Iterable[np.ndarray] = batches(rng.permutation(rows), config.batch_size)
        if progress is not None:
            description = f"epoch {epoch}/{config.epochs}"
            if history:
                last = history[-1]
                description += (
                    f" (last: loss {last['train_loss']:.4f}, {metric} {last[metric]:.4f})"
                )
            steps = progress(steps, description, -(-len(rows) // config.batch_size))
        total, count = 0.0, 0
        for block in steps:
            dense = torch.from_numpy(fit.densify(block, buffer)).to(device)
            total += _step(model, optimizer, dense, dense, config.l2) * len(block)
            count += len(block)
            if config.refeed:
                refed = model(dense).detach()
                _step(model, optimizer, refed, refed, config.l2)
        metric, score = validation_score(model, fit, validation, device)
        seconds = time.perf_counter() - started
        history.append(
            {"epoch": epoch, "train_loss": total / max(count, 1), metric: score, "seconds": seconds}
        )
        log.info(
            "epoch %d: train loss %.4f, %s %.4f (%.1f s)",
            epoch,
            total / max(count, 1),
            metric,
            score,
            seconds,
        )
        if scheduler is not None:
            scheduler.step(sign * score)
        if sign * score < best[0]:
            best = (sign * score, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= config.patience:
            log.info("no validation improvement for %d epochs: stopping", config.patience)
            break
    model.load_state_dict(best[2])
    model.eval()
    return TrainResult(model.cpu(), history, best[1], device, metric)
