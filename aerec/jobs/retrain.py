"""Weekly retrain with a quality gate: a new model is promoted only if it is not worse.

MODEL_DIR/
  versions/<stamp>/   checkpoint/ and model.onnx of each promoted model (the last --keep), and
                      gated.onnx: the model the gate judged, before the refit on every rating
  current             symlink to versions/<stamp>: the model in use, switched by one rename
  model.onnx          -> current/model.onnx (what the nightly run scores with); checkpoint/ alike
  candidates/<stamp>/ a candidate being trained, or one the gate refused (the last --keep)
  .lock

A candidate is trained and exported in candidates/, compared with the current model on the
same held-out slice (aerec.jobs.gate), moved to versions/ by one rename and made current by
another. A kill at any moment leaves the previous or the new version current, complete,
and the next retrain compares with it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aerec.contracts import (
    CANDIDATES_DIR,
    CHECKPOINT_CONFIG,
    CHECKPOINT_DIR,
    CURRENT_LINK,
    GATED_MODEL_FILE,
    LOCK_FILE,
    MIN_POPULARITY_AGREEMENT,
    MODEL_FILE,
    MODEL_NAMES,
    OWNED_MODELS,
    VERSIONS_DIR,
    Validation,
    run_stamp,
)
from aerec.data.readers import read_ratings
from aerec.data.split import NO_SPLIT, Split, load_split
from aerec.data.stats import check_popularity
from aerec.errors import InputError, file_error
from aerec.export.onnx_export import export_onnx
from aerec.io.atomic import fsync_dir
from aerec.io.lock import run_lock
from aerec.io.outputs import check_disjoint, claim_directory, is_legacy_layout
from aerec.io.pointer import link_through, resolve, switch
from aerec.io.stamped import prune_stamped
from aerec.jobs.attempts import logged_attempt
from aerec.jobs.gate import compare_models
from aerec.logs import set_run
from aerec.score.session import ModelFile, describe_model
from aerec.train.pipeline import TrainOptions, train_on
from aerec.train.presets import check_preset

log = logging.getLogger(__name__)


def current_version(model_dir: Path) -> Path | None:
    """The version directory `current` points at (None before the first promotion).

    Anything that is not a complete version where one is expected is an InputError, so a
    candidate is never promoted without a comparison.
    """
    version = resolve(model_dir / CURRENT_LINK)
    if version is None:
        for name in MODEL_NAMES:
            if (model_dir / name).exists() or (model_dir / name).is_symlink():
                raise file_error(
                    model_dir / name,
                    f"exists but {model_dir / CURRENT_LINK} does not (a model directory of an "
                    f"older aerec?): move the model to {VERSIONS_DIR}/<name>/ and link "
                    f"{CURRENT_LINK} to it, or use a new --model-dir",
                )
        return None
    for needed in (version / MODEL_FILE, version / CHECKPOINT_DIR / CHECKPOINT_CONFIG):
        if not needed.is_file():
            raise file_error(needed, "missing from the current model version")
    return version


def _written_by_older_aerec(model_dir: Path) -> bool:
    """A model directory of an aerec from before the ownership marker."""
    return is_legacy_layout(model_dir, MODEL_NAMES, VERSIONS_DIR, {LOCK_FILE, CANDIDATES_DIR})


def promote(candidate: Path, model_dir: Path) -> Path:
    """Move the candidate to versions/ (one rename) and make it current (another)."""
    version = model_dir / VERSIONS_DIR / candidate.name
    version.parent.mkdir(exist_ok=True)
    os.rename(candidate, version)
    fsync_dir(version.parent)
    switch(model_dir / CURRENT_LINK, Path(VERSIONS_DIR) / candidate.name)
    link_through(model_dir, CURRENT_LINK, MODEL_NAMES)
    return version


@dataclass(frozen=True)
class RetrainOptions:
    """aerec retrain's options (README "Commands")."""

    split: str = "user-temporal:0.2"
    preset: str = "default"
    tolerance: float | None = None  # None: NOISE_Z standard errors of the paired difference
    k: int = 10
    seed: int = 0
    device: str = "auto"
    keep: int = 3
    refit: bool = True
    min_agreement: float = MIN_POPULARITY_AGREEMENT

    def __post_init__(self) -> None:
        tolerance = self.tolerance
        if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
            raise InputError(f"--tolerance {tolerance}: expected a finite number >= 0")
        if self.keep < 1:
            raise InputError("--keep must be at least 1")
        check_preset(self.preset)


# what the attempts log keeps of an outcome (aerec status, aerec report)
LOGGED = ("candidate", "current", "promoted", "version", "reason", "gate")


def retrain(
    ratings: str | Path, model_dir: str | Path, options: RetrainOptions | None = None
) -> dict[str, Any]:
    """Train and export a candidate; promote it unless the gate finds it worse.

    `tolerance` None: the candidate may be worse by NOISE_Z standard errors of the paired
    NDCG@k difference; a number: by that much. The gate judges the candidate trained on
    the split's train side; with `refit`, what is promoted is then the same recipe refit on
    every rating (`--split none`: the epochs the candidate kept), so the model in use knows
    the freshest ratings and every item. The ratings are read once.
    """
    options = options or RetrainOptions()
    model_dir = Path(model_dir)
    check_disjoint([model_dir], [ratings])
    claim_directory(model_dir, OWNED_MODELS, _written_by_older_aerec)
    with run_lock(model_dir / LOCK_FILE), logged_attempt(model_dir, {}) as attempt:
        outcome = _retrain(ratings, model_dir, options)
        attempt.update({key: outcome[key] for key in LOGGED if key in outcome})
        return outcome


def _retrain(ratings: str | Path, model_dir: Path, options: RetrainOptions) -> dict[str, Any]:
    """The retrain under its lock."""
    current = current_version(model_dir)
    frame = read_ratings(ratings)  # once: the fit check, the split and the refit
    if current is not None:
        _check_like_current(ratings, frame, current, options.min_agreement)
    _prune_candidates(model_dir, options.keep)  # what killed runs left
    split = load_split(ratings, options.split, options.seed, frame)
    candidate = model_dir / CANDIDATES_DIR / run_stamp()
    set_run(candidate.name)
    with _removed_on_failure(candidate):
        metrics = train_on(split, ratings, candidate / CHECKPOINT_DIR, _training(options))
        export_onnx(candidate / CHECKPOINT_DIR, candidate / MODEL_FILE, options.k)
    outcome: dict[str, Any] = {"candidate": candidate.name, "validation": metrics["validation"]}
    if current is not None:
        outcome.update(_judged(candidate, current, split, options))
        if not outcome["promoted"]:
            _prune(model_dir, options.keep, current.name)
            return outcome
    if options.refit:
        with _removed_on_failure(candidate):  # a stopped refit is not promoted, nor kept
            everything = load_split(ratings, NO_SPLIT, options.seed, frame)
            chosen = metrics["validation"]
            outcome["refit"] = _refit(ratings, everything, candidate, options, chosen)
    version = promote(candidate, model_dir)
    outcome.update(promoted=True, version=version.name)
    log.info("promoted %s (%s)", version, outcome.get("gate", "no current model"))
    _prune(model_dir, options.keep, version.name)
    return outcome


@contextlib.contextmanager
def _removed_on_failure(candidate: Path) -> Iterator[None]:
    """A failed or stopped candidate is not kept."""
    try:
        yield
    except BaseException:
        shutil.rmtree(candidate, ignore_errors=True)
        raise


def _training(options: RetrainOptions) -> TrainOptions:
    return TrainOptions(options.preset, seed=options.seed, device=options.device, baselines=False)


def _judged(
    candidate: Path, current: Path, split: Split, options: RetrainOptions
) -> dict[str, Any]:
    """The gate's verdict on the candidate against the current version."""
    gate = compare_models(
        candidate / MODEL_FILE,
        _gated_model(current),
        split,
        options.k,
        options.tolerance,
        options.device,
    )
    verdict: dict[str, Any] = {"current": current.name, "gate": gate.as_dict(), "promoted": True}
    if not gate.passed:
        verdict["promoted"] = False
        verdict["reason"] = (
            f"candidate {gate.metric} {gate.candidate:.4f} is worse than the current "
            f"{gate.current:.4f} by {-gate.difference:.4f}, more than the "
            f"{gate.allowed:.4f} allowed, on {gate.users} held-out users"
        )
        log.warning("kept the current model %s: %s", current.name, verdict["reason"])
    return verdict


def _check_like_current(
    ratings: str | Path, frame: pl.DataFrame, current: Path, min_agreement: float
) -> None:
    """Refuse ratings whose item popularity ranks unlike the current model's training data
    (a corrupt export with shuffled item ids would otherwise train, pass the gate on its
    own held-out slice, and be promoted)."""
    info = describe_model(ModelFile.read(current / MODEL_FILE))
    if info.item_counts is None:
        return
    columns = info.items.index(frame["item_id"])
    counts = np.bincount(columns[columns >= 0], minlength=len(info.items))
    check_popularity(ratings, info.item_counts, counts, min_agreement)


def _gated_model(version: Path) -> Path:
    """The current version's model as its own gate judged it: the refit model saw every
    rating of its week, held-out slice included, so the comparison uses the model trained
    on its split's train side, like the candidate's."""
    gated = version / GATED_MODEL_FILE
    return gated if gated.is_file() else version / MODEL_FILE


def _refit(
    ratings: str | Path,
    everything: Split,
    candidate: Path,
    options: RetrainOptions,
    chosen: Validation,
) -> dict[str, Any]:
    """Replace the candidate's checkpoint and model by the same preset trained once on
    every rating (`everything`) for the epochs the candidate's validation kept (`chosen`),
    inside candidates/, which nobody reads."""
    refit_dir = candidate / f"{CHECKPOINT_DIR}.refit"
    metrics = train_on(everything, ratings, refit_dir, _training(options), chosen)
    export_onnx(refit_dir, candidate / f"{MODEL_FILE}.refit", options.k)
    shutil.rmtree(candidate / CHECKPOINT_DIR)
    refit_dir.rename(candidate / CHECKPOINT_DIR)
    os.replace(candidate / MODEL_FILE, candidate / GATED_MODEL_FILE)
    os.replace(candidate / f"{MODEL_FILE}.refit", candidate / MODEL_FILE)
    record: dict[str, Any] = metrics["refit"]
    return record


def _prune_candidates(model_dir: Path, keep: int) -> list[str]:
    """Remove every unfinished candidate (a run killed before its model was exported; the
    caller holds the lock) and all but the newest `keep` refused ones."""
    return prune_stamped(
        model_dir / CANDIDATES_DIR, keep, finished=lambda c: (c / MODEL_FILE).is_file()
    )


def _prune(model_dir: Path, keep: int, current: str) -> None:
    """Keep the newest `keep` versions (always the current one) and candidates."""
    removed = prune_stamped(model_dir / VERSIONS_DIR, keep, protect={current})
    removed += _prune_candidates(model_dir, keep)
    if removed:
        log.info("removed old versions and candidates: %s", ", ".join(removed))
