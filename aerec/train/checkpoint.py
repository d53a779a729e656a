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
from typing import Any

import numpy as np
import polars as pl
import torch

from aerec.contracts import (
    CHECKPOINT_CONFIG,
    CHECKPOINT_HISTORY,
    CHECKPOINT_ITEMS,
    CHECKPOINT_METRICS,
    CHECKPOINT_PLOT,
    CHECKPOINT_WEIGHTS,
    Metrics,
)
from aerec.data.idmap import IdMap
from aerec.errors import file_error
from aerec.io.atomic import fsync_dir, make_readable
from aerec.train.recommender import Recommender
from aerec.train.registry import recommender_from


@dataclass
class Checkpoint:
    model: Recommender
    items: IdMap
    config: dict[str, Any]
    metrics: Metrics
    item_counts: np.ndarray | None = None  # ratings per item in its training data (older: None)


def save_checkpoint(
    out: str | Path,
    model: Recommender,
    items: IdMap,
    config: dict[str, Any],
    metrics: Metrics,
    history_csv: str,
    item_counts: np.ndarray | None = None,
) -> Path:
    """Write the checkpoint into a fresh directory, then swap it in for `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    make_readable(staging)
    try:
        torch.save(model.network.state_dict(), staging / CHECKPOINT_WEIGHTS)
        full = {**model.describe(), **config}
        (staging / CHECKPOINT_CONFIG).write_text(json.dumps(full, indent=2) + "\n")
        table = items.to_frame()
        if item_counts is not None:
            table = table.with_columns(pl.Series("count", item_counts, dtype=pl.Int64))
        table.write_parquet(staging / CHECKPOINT_ITEMS)
        (staging / CHECKPOINT_METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        (staging / CHECKPOINT_HISTORY).write_text(history_csv)
        _plot_history(staging / CHECKPOINT_HISTORY, staging / CHECKPOINT_PLOT)
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
    for key in ("part", "member"):  # a blend or an ensemble: plot its first network
        if key in frame.columns:
            frame = frame.filter(pl.col(key) == 0)
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


def _shapes(state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(getattr(value, "shape", ())) for name, value in state.items()}


def _first_difference(expected: dict[str, tuple[int, ...]], state: dict[str, Any]) -> str:
    found = _shapes(state)
    for name in sorted(set(expected) | set(found)):
        if expected.get(name) != found.get(name):
            return (
                f"{name}: config.json needs {expected.get(name)}, the file holds {found.get(name)}"
            )
    return "not a state dict"


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Load a checkpoint, refusing pickled payloads and weights that do not fit the config."""
    directory = Path(directory)
    for name in (CHECKPOINT_WEIGHTS, CHECKPOINT_CONFIG, CHECKPOINT_ITEMS):
        if not (directory / name).is_file():
            raise file_error(directory / name, "missing from the checkpoint directory")
    try:
        config = json.loads((directory / CHECKPOINT_CONFIG).read_text(encoding="utf-8"))
        with torch.device("meta"):  # the shapes only: nothing is allocated yet
            shapes = _shapes(recommender_from(config).network.state_dict())
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise file_error(
            directory / CHECKPOINT_CONFIG, f"not a valid model config ({error})"
        ) from None
    try:
        state = torch.load(
            directory / CHECKPOINT_WEIGHTS, map_location="cpu", weights_only=True, mmap=True
        )
    except pickle.UnpicklingError as error:
        first = str(error).splitlines()[0]
        raise file_error(
            directory / CHECKPOINT_WEIGHTS, f"refused: not plain weights ({first})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise file_error(directory / CHECKPOINT_WEIGHTS, f"cannot read weights ({error})") from None
    if not isinstance(state, dict) or _shapes(state) != shapes:
        difference = _first_difference(shapes, state if isinstance(state, dict) else {})
        raise file_error(
            directory / CHECKPOINT_WEIGHTS, f"weights do not match config.json ({difference})"
        )
    model = recommender_from(config)  # as large as the weights file, checked above
    try:
        model.network.load_state_dict(state)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:200]
        problem = f"weights do not match config.json: {detail}"
        raise file_error(directory / CHECKPOINT_WEIGHTS, problem) from None
    model.network.eval()
    try:
        items = IdMap.load(directory / CHECKPOINT_ITEMS)
    except Exception as error:
        raise file_error(
            directory / CHECKPOINT_ITEMS, f"not a valid item table ({error})"
        ) from None
    width = model.input_width()
    if width is not None and len(items) != width:
        problem = f"{len(items)} items, config.json says {width}"
        raise file_error(directory / CHECKPOINT_ITEMS, problem)
    metrics_path = directory / CHECKPOINT_METRICS
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    table = pl.read_parquet(directory / CHECKPOINT_ITEMS).sort("index")
    counts = table["count"].to_numpy() if "count" in table.columns else None
    return Checkpoint(model=model, items=items, config=config, metrics=metrics, item_counts=counts)
