"""Weekly retrain with a quality gate: a new model is promoted only if it is not worse.

MODEL_DIR/
  versions/<stamp>/   checkpoint/ and model.onnx of each promoted model (the last --keep)
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

import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

from aerec.contracts import (
    CANDIDATES_DIR,
    CHECKPOINT_CONFIG,
    CHECKPOINT_DIR,
    CURRENT_LINK,
    LOCK_FILE,
    MODEL_FILE,
    MODEL_NAMES,
    VERSIONS_DIR,
    run_stamp,
)
from aerec.data.split import load_split
from aerec.errors import InputError, file_error
from aerec.export.onnx_export import export_onnx
from aerec.io.atomic import fsync_dir
from aerec.io.lock import run_lock
from aerec.io.pointer import link_through, resolve, switch
from aerec.io.stamped import prune_stamped
from aerec.jobs.gate import compare_models
from aerec.train.pipeline import train_model

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


def promote(candidate: Path, model_dir: Path) -> Path:
    """Move the candidate to versions/ (one rename) and make it current (another)."""
    version = model_dir / VERSIONS_DIR / candidate.name
    version.parent.mkdir(exist_ok=True)
    os.rename(candidate, version)
    fsync_dir(version.parent)
    switch(model_dir / CURRENT_LINK, Path(VERSIONS_DIR) / candidate.name)
    link_through(model_dir, CURRENT_LINK, MODEL_NAMES)
    return version


def retrain(
    ratings: str | Path,
    model_dir: str | Path,
    split: str = "user-temporal:0.2",
    preset: str = "default",
    tolerance: float | None = None,
    k: int = 10,
    seed: int = 0,
    device: str = "auto",
    keep: int = 3,
) -> dict[str, Any]:
    """Train and export a candidate; promote it unless the gate finds it worse.

    `tolerance` None: the candidate may be worse by NOISE_Z standard errors of the paired
    NDCG@k difference; a number: by that much.
    """
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise InputError(f"--tolerance {tolerance}: expected a finite number >= 0")
    if keep < 1:
        raise InputError("--keep must be at least 1")
    model_dir = Path(model_dir)
    with run_lock(model_dir / LOCK_FILE):
        current = current_version(model_dir)
        candidate = model_dir / CANDIDATES_DIR / run_stamp()
        try:
            metrics = train_model(
                ratings,
                candidate / CHECKPOINT_DIR,
                split=split,
                preset=preset,
                seed=seed,
                device=device,
                baselines=False,
            )
            export_onnx(candidate / CHECKPOINT_DIR, candidate / MODEL_FILE, k)
        except BaseException:  # a failed or stopped candidate is not kept
            shutil.rmtree(candidate, ignore_errors=True)
            raise
        outcome: dict[str, Any] = {"candidate": candidate.name, "validation": metrics["validation"]}
        if current is not None:
            gate = compare_models(
                candidate / MODEL_FILE,
                current / MODEL_FILE,
                load_split(ratings, split, seed),
                k,
                tolerance,
                device,
            )
            outcome.update(current=current.name, gate=gate.as_dict())
            if not gate.passed:
                outcome["promoted"] = False
                outcome["reason"] = (
                    f"candidate {gate.metric} {gate.candidate:.4f} is worse than the current "
                    f"{gate.current:.4f} by {-gate.difference:.4f}, more than the "
                    f"{gate.allowed:.4f} allowed, on {gate.users} held-out users"
                )
                log.warning("kept the current model %s: %s", current.name, outcome["reason"])
                _prune(model_dir, keep, current.name)
                return outcome
        version = promote(candidate, model_dir)
        outcome.update(promoted=True, version=version.name)
        log.info("promoted %s (%s)", version, outcome.get("gate", "no current model"))
        _prune(model_dir, keep, version.name)
        return outcome


def _prune(model_dir: Path, keep: int, current: str) -> None:
    """Keep the newest `keep` versions (always the current one) and candidates."""
    removed = prune_stamped(model_dir / VERSIONS_DIR, keep, protect={current})
    removed += prune_stamped(
        model_dir / CANDIDATES_DIR, keep, finished=lambda c: (c / MODEL_FILE).is_file()
    )
    if removed:
        log.info("removed old versions and candidates: %s", ", ".join(removed))
