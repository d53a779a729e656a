"""train-model as a function: split, carve validation, train, evaluate, save."""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from pathlib import Path

import polars as pl

from aerec.data.csr import CsrMatrix
from aerec.data.idmap import IdMap
from aerec.data.split import load_split, split_frame
from aerec.errors import InputError
from aerec.train.checkpoint import save_checkpoint
from aerec.train.evaluate import evaluate_autoencoder, global_mean_baseline
from aerec.train.model import ModelConfig
from aerec.train.presets import PRESETS
from aerec.train.trainer import Progress, TrainConfig, train_autoencoder

log = logging.getLogger(__name__)


def train_model(
    ratings: str | Path,
    out: str | Path,
    split: str = "user-temporal:0.2",
    preset: str = "default",
    epochs: int | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: Progress | None = None,
) -> dict[str, object]:
    """Train a model on the split's train side, evaluate on its test side, write a checkpoint.

    The validation slice that drives early stopping is carved from the train side; the
    test side is only ever a target of evaluation. Returns the metrics written.
    """
    if preset not in PRESETS:
        raise InputError(f"--preset {preset!r}: known presets are {', '.join(PRESETS)}")
    chosen = PRESETS[preset]
    data = load_split(ratings, split, seed)
    log.info(
        "split %s: train %s, test %s, dropped %s",
        split,
        *(data.stats()[k] for k in ("train", "test", "dropped")),
    )
    carved = split_frame(data.train, "random:0.05", seed)
    users, items = IdMap.from_ids(data.train["user_id"]), IdMap.from_ids(data.train["item_id"])
    fit = CsrMatrix.from_frame(carved.train, users, items)
    validation = CsrMatrix.from_frame(carved.test, users, items)
    model_config = ModelConfig(
        n_items=len(items),
        hidden=list(chosen.hidden),
        activation=chosen.activation,
        code_dropout=chosen.code_dropout,
        input_dropout=chosen.input_dropout,
    )
    train_config = TrainConfig(
        epochs=chosen.epochs,
        batch_size=chosen.batch_size,
        lr=chosen.lr,
        weight_decay=chosen.weight_decay,
        seed=seed,
    )
    if epochs is not None:
        train_config = replace(train_config, epochs=epochs)
    result = train_autoencoder(fit, validation, model_config, train_config, device, progress)
    train = CsrMatrix.from_frame(data.train, users, items)
    test = CsrMatrix.from_frame(data.test, users, items)
    metrics = {
        "test": evaluate_autoencoder(result.model, train, test),
        "baselines": {"global_mean": global_mean_baseline(train, test)},
        "validation": {
            "rmse": min(h["val_rmse"] for h in result.history),
            "best_epoch": result.best_epoch,
        },
        "split": data.stats(),
    }
    history = io.StringIO()
    pl.DataFrame(result.history).write_csv(history)
    config = {
        "preset": preset,
        "train": train_config.to_dict(),
        "split": split,
        "device": result.device,
        "ratings": str(ratings),
    }
    save_checkpoint(out, result.model, items, config, metrics, history.getvalue())
    log.info(
        "test RMSE %.4f, MAE %.4f (global mean %.4f); checkpoint in %s",
        metrics["test"]["rmse"],
        metrics["test"]["mae"],
        metrics["baselines"]["global_mean"]["rmse"],
        out,
    )
    return metrics
