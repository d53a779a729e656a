"""Mini-batch training of the autoencoder with early stopping on a validation slice."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aerec.contracts import DEVICES, Progress
from aerec.data.csr import CsrMatrix, batches
from aerec.errors import InputError
from aerec.train.config import TrainConfig
from aerec.train.model import Network
from aerec.train.rows import RatedRows, TrainingRows
from aerec.train.trainable import Phase, Trainable, TrainStep

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    network: Network  # on the CPU, in eval mode
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


PRECISIONS = ("auto", "fp32", "bf16")


def autocast_dtype(precision: str, device: str) -> torch.dtype | None:
    """The dtype training autocasts to (None: float32 throughout): `auto` takes bfloat16
    on a GPU that computes in it, where it halves the products' memory traffic; on a CPU
    without bfloat16 units it would only add casts."""
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision!r}: expected {', '.join(PRECISIONS)}")
    if precision == "auto":
        gpu_bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if gpu_bf16 else None
    return torch.bfloat16 if precision == "bf16" else None


def _optimizer(parameters: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        # fused: one kernel over each parameter, not a pass per operation (8x on the CPU)
        return torch.optim.Adam(
            parameters, lr=config.lr, weight_decay=config.weight_decay, fused=True
        )
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    raise InputError(f"optimizer {config.optimizer!r}: expected adam or sgd")


def _trained_only(network: nn.Module, phase: Phase, alone: bool) -> None:
    """Gradients for the phase's parameters only (every parameter again when `alone` is
    false), so a phase does not differentiate what it does not update."""
    chosen = {id(parameter) for parameter in phase.parameters}
    for parameter in network.parameters():
        parameter.requires_grad_(not alone or id(parameter) in chosen)


def _step(
    model: Trainable,
    network: Network,
    optimizer: torch.optim.Optimizer,
    batch: RatedRows,
    l2: float,
    step: TrainStep,
    autocast: torch.dtype | None = None,
) -> float:
    optimizer.zero_grad(set_to_none=True)
    device = batch.values.device.type
    with torch.autocast(device, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        loss = model.loss(network, batch, step)
        if l2 > 0:
            weights = [p for name, p in network.named_parameters() if name.endswith("weight")]
            loss = loss + l2 * sum(w.pow(2).sum() for w in weights)
    loss.backward()
    optimizer.step()
    return float(loss.item())


class _Epochs:
    """One training run's state: the network, its phases with an optimiser each, the
    batches' order and the count of batches seen (the loss's TrainStep)."""

    def __init__(self, model: Trainable, fit: CsrMatrix, config: TrainConfig, device: str) -> None:
        self.model, self.fit, self.config, self.device = model, fit, config, device
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.network = model.new_network().to(device)
        self.phases = model.phases(self.network)
        self.optimizers = [_optimizer(phase.parameters, config) for phase in self.phases]
        self.rows = np.flatnonzero(fit.row_counts())
        self.source = TrainingRows(fit, device)
        self.autocast = autocast_dtype(config.precision, device)
        self.seen = 0

    def run(self, epoch: int, progress: Progress | None, description: str) -> dict[str, float]:
        """One epoch: each phase's passes over every row with a rating. Its history row:
        the epoch, the mean training loss, the seconds it took, the rows trained on."""
        started, config, network = time.perf_counter(), self.config, self.network
        network.train()
        self.model.start_epoch(network)
        per_pass = -(-len(self.rows) // config.batch_size)
        steps: Iterable[tuple[Phase, torch.optim.Optimizer, np.ndarray]] = (
            (phase, optimizer, block)
            for phase, optimizer in zip(self.phases, self.optimizers, strict=True)
            for _ in range(phase.passes)
            for block in batches(self.rng.permutation(self.rows), config.batch_size)
        )
        if progress is not None:
            total_passes = sum(phase.passes for phase in self.phases)
            steps = progress(steps, description, per_pass * total_passes)
        total, count, current = 0.0, 0, None
        for phase, optimizer, block in steps:
            if phase is not current:
                _trained_only(network, phase, alone=len(self.phases) > 1)
                current = phase
            batch = self.source.batch(block)
            step = TrainStep(epoch=epoch, step=self.seen, epochs=config.epochs, phase=phase.name)
            loss = _step(self.model, network, optimizer, batch, config.l2, step, self.autocast)
            total, count, self.seen = total + loss * len(block), count + len(block), self.seen + 1
            if config.refeed:
                refed = RatedRows.of_dense(network.forward_rows(batch).detach())
                _step(self.model, network, optimizer, refed, config.l2, step, self.autocast)
        network.requires_grad_(True)
        seconds = time.perf_counter() - started
        loss = total / max(count, 1)
        return {"epoch": epoch, "train_loss": loss, "train_seconds": seconds, "rows": count}


def train_network(
    model: Trainable,
    fit: CsrMatrix,
    validation: CsrMatrix | None,
    config: TrainConfig,
    device: str = "auto",
    progress: Progress | None = None,
) -> TrainResult:
    """Train a fresh network of `model` on the rows of `fit` (already oriented for it);
    after each epoch score `validation` from the `fit` rows.

    The weights of the epoch with the best validation score are kept; training stops after
    `patience` epochs without improvement. Without `validation` (a refit on every rating)
    all `config.epochs` run and the last weights are kept. The network ends on the CPU in
    eval mode. Each epoch's history row holds its mean loss and the seconds of its
    training pass (`train_seconds`); with validation, also the score and the seconds of
    the whole epoch (`seconds`).
    """
    device = resolve_device(device)
    epochs = _Epochs(model, fit, config, device)
    network, metric = epochs.network, model.selection.metric
    if validation is None:
        history: list[dict[str, float]] = []
        for epoch in range(1, config.epochs + 1):
            history.append(epochs.run(epoch, progress, f"epoch {epoch}/{config.epochs}"))
            loss, seconds = history[-1]["train_loss"], history[-1]["train_seconds"]
            log.info(
                "refit epoch %d/%d: train loss %.4f (%.1f s)", epoch, config.epochs, loss, seconds
            )
        return TrainResult(network.cpu().eval(), history, config.epochs, device, metric)
    history, best = _select_epoch(epochs, validation, progress)
    log.info(
        "kept epoch %d of %d: the best %s on the validation slice (%.4f)",
        best[1],
        len(history),
        metric,
        history[best[1] - 1][metric],
    )
    network.load_state_dict(best[2])
    return TrainResult(network.cpu().eval(), history, best[1], device, metric)


def _select_epoch(
    epochs: _Epochs, validation: CsrMatrix, progress: Progress | None
) -> tuple[list[dict[str, float]], tuple[float, int, dict[str, torch.Tensor]]]:
    """Epochs scored on `validation` until the limit or `patience` epochs without a better
    score: the history, and (the best signed score, its epoch, its weights)."""
    model, network, config = epochs.model, epochs.network, epochs.config
    metric = model.selection.metric
    schedulers = []
    if config.lr_decay < 1.0:
        schedulers = [
            torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=config.lr_decay, patience=2
            )
            for optimizer in epochs.optimizers
        ]
    sign = -1.0 if model.selection.higher_is_better else 1.0  # minimise sign * score
    best: tuple[float, int, dict[str, torch.Tensor]] = (float("inf"), 0, {})
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        started, description = time.perf_counter(), f"epoch {epoch}/{config.epochs}"
        if history:
            last = history[-1]
            description += f" (last: loss {last['train_loss']:.4f}, {metric} {last[metric]:.4f})"
        row = epochs.run(epoch, progress, description)
        score = model.validate(network, epochs.fit, validation, epochs.device)
        history.append(row | {metric: score, "seconds": time.perf_counter() - started})
        log.info(
            "epoch %d: train loss %.4f, %s %.4f (%.1f s, of which training %.1f s)",
            epoch,
            row["train_loss"],
            metric,
            score,
            history[-1]["seconds"],
            row["train_seconds"],
        )
        for scheduler in schedulers:
            scheduler.step(sign * score)
        if sign * score < best[0]:
            best = (sign * score, epoch, copy.deepcopy(network.state_dict()))
        elif epoch - best[1] >= config.patience:
            log.info("no validation improvement for %d epochs: stopping", config.patience)
            break
    return history, best
