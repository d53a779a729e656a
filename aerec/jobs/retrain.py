"""Weekly retrain with a quality gate: a new model is promoted only if it is not worse.

MODEL_DIR holds the promoted `checkpoint/` and `model.onnx` (what the nightly run scores
with) and `candidates/<stamp>/` for each retrain. The gate compares the validation metric
each model was selected on (NDCG@10 for ranking models, RMSE for rating models; both from
validation slices of their own training data, never a test split).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from aerec.contracts import (
    CANDIDATES_DIR,
    CHECKPOINT_DIR,
    CHECKPOINT_METRICS,
    LOCK_FILE,
    MODEL_FILE,
    Validation,
    run_stamp,
)
from aerec.export.onnx_export import export_onnx
from aerec.io.atomic import atomic_path, fsync_dir
from aerec.io.lock import run_lock
from aerec.train.pipeline import train_model

log = logging.getLogger(__name__)


def regression(candidate: Validation, current: Validation) -> float:
    """How much worse the candidate's validation metric is (negative: better)."""
    if candidate["metric"] != current["metric"]:
        return float("inf")
    difference = candidate["best"] - current["best"]
    return difference if candidate["metric"].endswith("rmse") else -difference


def retrain(
    ratings: str | Path,
    model_dir: str | Path,
    split: str = "user-temporal:0.2",
    preset: str = "default",
    tolerance: float = 0.01,
    k: int = 10,
    seed: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """Train and export a candidate; promote it unless the gate says it is worse."""
    model_dir = Path(model_dir)
    with run_lock(model_dir / LOCK_FILE):
        candidate = model_dir / CANDIDATES_DIR / run_stamp()
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
        new: Validation = metrics["validation"]
        current_metrics = model_dir / CHECKPOINT_DIR / CHECKPOINT_METRICS
        outcome: dict[str, Any] = {"candidate": str(candidate), "validation": new}
        if current_metrics.exists():
            current: Validation = json.loads(current_metrics.read_text())["validation"]
            worse = regression(new, current)
            outcome["current_validation"] = current
            if worse > tolerance:
                outcome["promoted"] = False
                outcome["reason"] = (
                    f"candidate {new['metric']} {new['best']:.4f} is worse than the current "
                    f"{current['best']:.4f} beyond the tolerance {tolerance}"
                )
                log.warning("kept the current model: %s", outcome["reason"])
                return outcome
        _promote(candidate, model_dir)
        outcome["promoted"] = True
        log.info("promoted %s: validation %s", candidate, new)
        return outcome


def _promote(candidate: Path, model_dir: Path) -> None:
    """Swap in the candidate's checkpoint, then atomically replace model.onnx."""
    target = model_dir / CHECKPOINT_DIR
    old, staged = model_dir / f".{CHECKPOINT_DIR}.old", model_dir / f".{CHECKPOINT_DIR}.new"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(candidate / CHECKPOINT_DIR, staged)
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staged.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    with atomic_path(model_dir / MODEL_FILE) as temporary:
        temporary.unlink()
        os.link(candidate / MODEL_FILE, temporary)
    fsync_dir(model_dir)
