"""Checkpoint directories: weights.pt (plain tensors), config.json, items.parquet, metrics.json.

Weights are a state dict saved with torch.save and loaded with weights_only=True, so
loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from aerec.atomic import fsync_dir, make_readable
from aerec.data.idmap import IdMap
from aerec.errors import file_error
from aerec.train.model import ModelConfig, Recommender, build_model

WEIGHTS = "weights.pt"
CONFIG = "config.json"
ITEMS = "items.parquet"
METRICS = "metrics.json"
HISTORY = "history.csv"


@dataclass
class Checkpoint:
    model: Recommender
    items: IdMap
    config: dict[str, object]
    metrics: dict[str, object]


def save_checkpoint(
    out: str | Path,
    model: Recommender,
    items: IdMap,
    config: dict[str, object],
    metrics: dict[str, object],
    history_csv: str,
) -> Path:
    """Write the checkpoint into a fresh directory, then swap it in for `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    make_readable(staging)
    try:
        torch.save(model.state_dict(), staging / WEIGHTS)
        full = {"model": model.config.to_dict(), **config}
        (staging / CONFIG).write_text(json.dumps(full, indent=2) + "\n")
        items.save(staging / ITEMS)
        (staging / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        (staging / HISTORY).write_text(history_csv)
        _plot_history(staging / HISTORY, staging / "training.png")
        for path in staging.iterdir():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        staging.rename(out)
        fsync_dir(out.parent)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _plot_history(history: Path, png: Path) -> None:
    """A training-curve PNG, when matplotlib is installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import polars as pl
    except ImportError:
        return
    frame = pl.read_csv(history)
    if "member" in frame.columns:  # an ensemble: plot its first member
        frame = frame.filter(pl.col("member") == 0)
    metric = next((c for c in frame.columns if c.startswith("val_")), None)
    if frame.height == 0 or metric is None or "train_loss" not in frame.columns:
        return
    figure, left = plt.subplots(figsize=(6, 3.5))
    left.plot(frame["epoch"], frame["train_loss"], label="train loss (masked MSE)")
    left.set_xlabel("epoch")
    left.set_ylabel("train loss")
    right = left.twinx()
    right.plot(frame["epoch"], frame[metric], color="tab:orange", label=f"validation {metric[4:]}")
    right.set_ylabel(f"validation {metric[4:]}")
    figure.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(png, dpi=100)
    plt.close(figure)


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Load a checkpoint, refusing pickled payloads and weights that do not fit the config."""
    directory = Path(directory)
    for name in (WEIGHTS, CONFIG, ITEMS):
        if not (directory / name).is_file():
            raise file_error(directory / name, "missing from the checkpoint directory")
    try:
        config = json.loads((directory / CONFIG).read_text())
        model_config = ModelConfig.from_dict(config["model"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise file_error(directory / CONFIG, f"not a valid model config ({error})") from None
    try:
        state = torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).splitlines()[0]
        raise file_error(directory / WEIGHTS, f"refused: not plain weights ({first})") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise file_error(directory / WEIGHTS, f"cannot read weights ({error})") from None
    model = build_model(model_config, int(config.get("members", 1)))
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:200]
        problem = f"weights do not match config.json: {detail}"
        raise file_error(directory / WEIGHTS, problem) from None
    model.eval()
    try:
        items = IdMap.load(directory / ITEMS)
    except Exception as error:
        raise file_error(directory / ITEMS, f"not a valid item table ({error})") from None
    if not model_config.item_based and len(items) != model_config.n_items:
        problem = f"{len(items)} items, config.json says {model_config.n_items}"
        raise file_error(directory / ITEMS, problem)
    metrics_path = directory / METRICS
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return Checkpoint(model=model, items=items, config=config, metrics=metrics)
