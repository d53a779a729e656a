"""Mini-batch training of the autoencoder with early stopping on a validation slice."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from aerec.contracts import DEVICES, Progress
from aerec.data.csr import CsrMatrix, batches
from aerec.errors import InputError
from aerec.train.config import TrainConfig
from aerec.train.model import build_network

if TYPE_CHECKING:
    from aerec.train.recommender import AutoEncoderKind

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    history: list[dict[str, float]]
    best_epoch: int
    device: str
    validation_metric: str


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when torch sees a GPU; 'cuda' without one is an error."""
    if device not in DEVICES:
        raise InputError(f"--device {device!r}: expected auto, cpu or cuda")
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise InputError("--device cuda: torch sees no CUDA device (is the CUDA build installed?)")
    if device == "auto":
        return "cuda" if cuda else "cpu"
    return device


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
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
    model: AutoEncoderKind,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    target: torch.Tensor,
    l2: float,
) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss = model.loss(model.network(inputs), target)
    if l2 > 0:
        weights = [p for name, p in model.network.named_parameters() if name.endswith("weight")]
        loss = loss + l2 * sum(w.pow(2).sum() for w in weights)
    loss.backward()
    optimizer.step()
    return float(loss.item())


def train_network(
    model: AutoEncoderKind,
    fit: CsrMatrix,
    validation: CsrMatrix | None,
    config: TrainConfig,
    device: str = "auto",
    progress: Progress | None = None,
) -> TrainResult:
    """Train model.network on the rows of `fit` (already oriented for the model's kind);
    after each epoch score `validation` from the `fit` rows.

    The weights of the epoch with the best validation score are kept; training stops after
    `patience` epochs without improvement. Without `validation` (a refit on every rating)
    all `config.epochs` run and the last weights are kept. The network ends on the CPU in
    eval mode.
    """
    device = resolve_device(device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model.network = build_network(model.config).to(device)
    network = model.network
    optimizer = _optimizer(network, config)
    scheduler = None
    if config.lr_decay < 1.0:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.lr_decay, patience=2
        )
    rows = np.flatnonzero(fit.row_counts())
    buffer = np.zeros((config.batch_size, fit.n_cols), dtype=np.float32)
    history: list[dict[str, float]] = []
    sign = 1.0 if model.predicts_ratings else -1.0  # RMSE falls, NDCG rises
    best: tuple[float, int, dict[str, torch.Tensor]] = (float("inf"), 0, {})
    metric = "val_rmse" if model.predicts_ratings else "val_ndcg@10"
    for epoch in range(1, config.epochs + 1):
        network.train()
        started = time.perf_counter()
        steps: Iterable[np.ndarray] = batches(rng.permutation(rows), config.batch_size)
        if progress is not None:
            description = f"epoch {epoch}/{config.epochs}"
            if history and validation is not None:
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
                refed = network(dense).detach()
                _step(model, optimizer, refed, refed, config.l2)
        if validation is None:
            loss = total / max(count, 1)
            history.append({"epoch": epoch, "train_loss": loss})
            log.info("refit epoch %d/%d: train loss %.4f", epoch, config.epochs, loss)
            continue
        metric, score = model.validate(fit, validation, device)
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
            best = (sign * score, epoch, copy.deepcopy(network.state_dict()))
        elif epoch - best[1] >= config.patience:
            log.info("no validation improvement for %d epochs: stopping", config.patience)
            break
    if validation is None:
        model.network = network.cpu().eval()
        return TrainResult(history, config.epochs, device, metric)
    log.info(
        "kept epoch %d of %d: the best %s on the validation slice (%.4f)",
        best[1],
        len(history),
        metric,
        sign * best[0],
    )
    network.load_state_dict(best[2])
    model.network = network.cpu().eval()
    return TrainResult(history, best[1], device, metric)
