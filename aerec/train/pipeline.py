"""train-model as a function: split, carve validation, train, evaluate, save."""

from __future__ import annotations

import io
import logging
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from aerec.contracts import (
    CHECKPOINT_CONFIG,
    CHECKPOINT_FILES,
    CHECKPOINT_WEIGHTS,
    Metrics,
    Progress,
    SideStats,
    Validation,
)
from aerec.data.csr import CsrMatrix
from aerec.data.idmap import IdMap
from aerec.data.split import NO_SPLIT, Split, load_split, split_frame
from aerec.errors import InputError
from aerec.io.outputs import check_disjoint, check_output_dir
from aerec.train.checkpoint import load_checkpoint, save_checkpoint
from aerec.train.config import TrainConfig
from aerec.train.evaluate import (
    EvalData,
    evaluate_baselines,
    evaluate_model,
    leaky_seed_topk_accuracy,
)
from aerec.train.presets import PRESETS, Preset, check_preset
from aerec.train.recommender import FitRecord, Recommender
from aerec.train.registry import build_for_preset
from aerec.train.trainer import autocast_dtype, resolve_device

log = logging.getLogger(__name__)


def eval_data(split: Split, seed: int, validation_fraction: float = 0.05) -> tuple[EvalData, IdMap]:
    """The split's matrices over the train side's id maps, and the item map."""
    users, items = IdMap.from_ids(split.train["user_id"]), IdMap.from_ids(split.train["item_id"])
    carved = split_frame(split.train, f"random:{validation_fraction}", seed)
    data = EvalData(
        train=CsrMatrix.from_frame(split.train, users, items),
        test=CsrMatrix.from_frame(split.test, users, items),
        fit=CsrMatrix.from_frame(carved.train, users, items),
        validation=CsrMatrix.from_frame(carved.test, users, items),
        cold_rows=users.index(split.cold["user_id"]),
        cold_cols=items.index(split.cold["item_id"]),
        cold_ratings=split.cold["rating"].to_numpy(),
        catalogue=pl.concat([split.train, split.test, split.cold])["item_id"].n_unique(),
        scale=_scale(split),
    )
    return data, items


def _scale(split: Split) -> tuple[float, float]:
    """The lowest and highest rating anywhere in the split's data."""
    ratings = pl.concat([split.train, split.test, split.cold])["rating"]
    return float(ratings.min()), float(ratings.max())  # type: ignore[arg-type]


def fit_then_refit(
    preset: Preset,
    data: EvalData,
    train: TrainConfig,
    device: str = "auto",
    progress: Progress | None = None,
) -> tuple[Recommender, FitRecord, list[dict[str, float]]]:
    """Choose the epochs on the validation slice (train on `fit`, score `validation`),
    then train the networks afresh on the whole train side for those epochs (what else
    validation chose, such as a blend's weights, is kept): the model returned has seen
    every training rating, as the refitted baselines have. Returns it, the validation
    record and the refit's history."""
    model = build_for_preset(preset, data.fit)  # fit and train share the train side's ids
    fitted = model.fit(data.fit, data.validation, train, device, progress)
    epochs = fitted.validation["best_epoch"]
    log.info("refitting on all %d training ratings for the kept epochs %s", data.train.nnz, epochs)
    rows = model.refit(data.train, train, epochs, device, progress)
    return model, fitted, rows


def evaluate_all(
    model: Recommender, data: EvalData, split: Split, k: int = 10, baselines: bool = True
) -> Metrics:
    """metrics.json: test (the model), baselines, the leaky seed metric, split statistics."""
    metrics: Metrics = {"test": evaluate_model(model, data, k)}
    if baselines:
        metrics["baselines"] = evaluate_baselines(data, k)
    metrics[f"leaky_seed_topk_accuracy@{k}"] = leaky_seed_topk_accuracy(model, data, k)
    metrics["split"] = split.stats()
    return metrics


@dataclass(frozen=True)
class TrainOptions:
    """How train-model trains (its options besides the ratings, the output and the split)."""

    preset: str = "default"
    epochs: int | None = None  # default: the preset's
    seed: int = 0
    device: str = "auto"
    baselines: bool = True  # evaluate the baselines beside the model
    progress: Progress | None = None
    precision: str | None = None  # default: the preset's (aerec.train.trainer.PRECISIONS)

    def applied_to(self, train: TrainConfig) -> TrainConfig:
        """A preset's optimisation settings with these options' seed, epochs, precision."""
        return replace(
            train,
            seed=self.seed,
            epochs=self.epochs or train.epochs,
            precision=self.precision or train.precision,
        )


def train_model(
    ratings: str | Path,
    out: str | Path,
    split: str = "user-temporal:0.2",
    options: TrainOptions | None = None,
    frame: pl.DataFrame | None = None,
) -> Metrics:
    """Train on the split's train side, evaluate on its test side, write a checkpoint.

    Early stopping and model selection use a validation slice carved from the train side;
    the test side is only ever a target of evaluation. Returns the metrics written.

    `split` "none" (the production model): no test side; the epochs are chosen on the
    validation slice, then a fresh model is refit on every rating for those epochs, so it
    knows every item of the ratings. metrics.json then holds the validation record and the
    refit, and no test metrics. `frame`: the ratings already read (not read again).
    """
    options = options or TrainOptions()
    check_preset(options.preset)
    check_output_dir(out, CHECKPOINT_FILES, (CHECKPOINT_WEIGHTS, CHECKPOINT_CONFIG), "checkpoint")
    check_disjoint([out], [ratings])
    return train_on(load_split(ratings, split, options.seed, frame), ratings, out, options)


def train_on(
    data_split: Split,
    ratings: str | Path,
    out: str | Path,
    options: TrainOptions,
    selected: Validation | None = None,
) -> Metrics:
    """train_model on a split already made (`ratings` names its source in config.json).

    `selected`: the validation record of an earlier fit of the same preset (aerec
    retrain's candidate); its kept epochs are reused, so the model is trained once, on the
    whole train side, with no validation pass of its own.
    """
    chosen = PRESETS[options.preset]
    stats = data_split.stats()
    log.info(
        "split %s: train %s, test %s; %s test ratings dropped (users or items not in train)",
        data_split.spec,
        _side(stats["train"]),
        _side(stats["test"]),
        f"{stats['dropped']['total']:,}",
    )
    data, items = eval_data(data_split, options.seed, chosen.validation_fraction)
    train_config = options.applied_to(chosen.train)
    if selected is None:
        model, fitted, refit_rows = fit_then_refit(
            chosen, data, train_config, options.device, options.progress
        )
        selected, history, device = fitted.validation, fitted.history, fitted.device
        warn_if_capped(selected["best_epoch"], train_config.epochs)
    else:
        model = build_for_preset(chosen, data.fit)
        log.info(
            "training on all %d ratings for the epochs %s", data.train.nnz, selected["best_epoch"]
        )
        refit_rows = model.refit(
            data.train, train_config, selected["best_epoch"], options.device, options.progress
        )
        history, device = refit_rows, resolve_device(options.device)
    refit = {"ratings": data.train.nnz, "epochs": selected["best_epoch"]}
    if data_split.spec == NO_SPLIT:
        metrics: Metrics = {"split": stats, "refit": refit}
        history = refit_rows
    else:
        metrics = evaluate_all(model, data, data_split, baselines=options.baselines)
        metrics["refit"] = refit
    metrics["validation"] = selected
    config = {
        "preset": options.preset,
        "train": train_config.to_dict(),
        "split": data_split.spec,
        "seed": options.seed,
        "device": device,
        "precision": "bf16" if autocast_dtype(train_config.precision, device) else "fp32",
        "ratings": str(ratings),
    }
    _save(out, model, items, data_split, config, metrics, history)
    return metrics


def _side(side: SideStats) -> str:
    return f"{side['ratings']:,} ratings of {side['users']:,} users and {side['items']:,} items"


def warn_if_capped(kept: Sequence[int], cap: int) -> None:
    """Warn when validation kept an epoch within the last tenth of the epoch limit: the
    model may still have been improving."""
    near = [epoch for epoch in kept if epoch > cap - max(1, cap // 10)]
    if near:
        log.warning(
            "kept epoch %s of at most %d: the epoch limit may be what stopped it; "
            "a larger --epochs may do better",
            ", ".join(map(str, near)),
            cap,
        )


def _save(
    out: str | Path,
    model: Recommender,
    items: IdMap,
    data_split: Split,
    config: dict[str, object],
    metrics: Metrics,
    history: list[dict[str, float]],
) -> None:
    """The checkpoint, with each item's training count and the per-epoch history."""
    trained_on = items.index(data_split.train["item_id"])
    counts = np.bincount(trained_on[trained_on >= 0], minlength=len(items))
    rows = io.StringIO()
    pl.DataFrame(history).write_csv(rows)
    save_checkpoint(out, model, items, config, metrics, rows.getvalue(), counts)
    test = metrics.get("test", {})
    log.info(
        "test: %s; checkpoint in %s",
        ", ".join(f"{name} {value:.4f}" for name, value in test.items() if isinstance(value, float))
        or "none (--split none)",
        out,
    )


def evaluate_checkpoint(
    checkpoint: str | Path,
    ratings: str | Path,
    split: str | None = None,
    seed: int | None = None,
    k: int = 10,
    baselines: bool = True,
) -> Metrics:
    """Evaluate a saved model on a split whose train side has the model's item table
    (`split`, `seed` None: those its config.json records)."""
    loaded = load_checkpoint(checkpoint)
    split = split or str(loaded.config.get("split") or "")
    if not split or split == NO_SPLIT:
        raise InputError(
            f"{checkpoint}: trained with no test side (--split {split or 'unknown'}); "
            "give --split with the held-out ratings to evaluate on"
        )
    seed = int(loaded.config.get("seed", 0)) if seed is None else seed
    data_split = load_split(ratings, split, seed)
    preset = PRESETS.get(str(loaded.config.get("preset")))
    # The same validation slice as in training, so the baselines are tuned alike.
    data, items = eval_data(data_split, seed, preset.validation_fraction if preset else 0.05)
    if not (len(items) == len(loaded.items) and (items.ids == loaded.items.ids).all()):
        raise InputError(
            f"{checkpoint}: the model's {len(loaded.items)} items differ from the "
            f"{len(items)} items of this split's train side; evaluate on the split it was "
            "trained on"
        )
    return evaluate_all(loaded.model, data, data_split, k, baselines)


TABLE_COLUMNS = (
    "rmse",
    "mae",
    "precision@{k}",
    "recall@{k}",
    "ndcg@{k}",
    "coverage@{k}",
    "mean_popularity@{k}",
)


COLUMN_LEGEND = (
    "rmse, mae: error of the predicted ratings on the test side's ratings (rating models "
    "only); precision@{k}, recall@{k}, ndcg@{k}: how the held-out positives (ratings at "
    "the positive threshold or above) rank among each test user's unrated items; "
    "coverage@{k}: share of the catalogue in anyone's top {k}; mean_popularity@{k}: mean "
    "training count of the recommended items"
)


def format_metrics(metrics: Metrics, k: int = 10, name: str = "model") -> str:
    """The model (its row named `name`, e.g. its preset) and the baselines as an aligned
    text table with a legend (or, for a model refit on every rating, its validation and
    refit records)."""
    if "test" not in metrics:
        chosen, refit = metrics["validation"], metrics["refit"]
        return (
            f"no test side (--split none): {chosen['metric']} {chosen['best']:.4f} on the "
            f"validation slice at epochs {chosen['best_epoch']}; refit on all "
            f"{refit['ratings']:,} ratings for those epochs"
        )
    rows = {name: metrics["test"], **metrics.get("baselines", {})}
    names = [c.format(k=k) for c in TABLE_COLUMNS]
    width = max(12, *(len(label) + 2 for label in rows))
    lines = [f"{'':<{width}}" + "".join(f"{n:>20}" for n in names)]
    for label, values in rows.items():
        cells = [values.get(n) for n in names]
        lines.append(
            f"{label:<{width}}"
            + "".join(f"{'-':>20}" if v is None else f"{v:>20.4f}" for v in cells)
        )
    test = metrics.get("split", {}).get("test", {})
    notes = [
        f"On the test side of split {metrics.get('split', {}).get('spec', '?')} "
        f"({test.get('ratings', 0):,} ratings of {test.get('users', 0):,} users). "
        + COLUMN_LEGEND.format(k=k)
        + "."
    ]
    leak = metrics.get(f"leaky_seed_topk_accuracy@{k}")
    if leak is not None:
        notes.append(
            f"For comparison with the second seed only, its top-{k} accuracy: {leak:.4f}. It "
            "feeds the test ratings in as input, so it measures copying, not recommending."
        )
    return "\n".join(lines + [textwrap.fill(note, 100) for note in notes])
