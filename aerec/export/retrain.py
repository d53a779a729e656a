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
from datetime import datetime, timezone
from pathlib import Path

from aerec.atomic import atomic_path, fsync_dir
from aerec.export.onnx_export import export_onnx
from aerec.score.lock import run_lock
from aerec.train.checkpoint import METRICS
from aerec.train.pipeline import train_model

log = logging.getLogger(__name__)


def regression(candidate: dict, current: dict) -> float:
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
) -> dict[str, object]:
    """Train and export a candidate; promote it unless the gate says it is worse."""
    model_dir = Path(model_dir)
    with run_lock(model_dir / ".lock"):
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S_%fZ")
        candidate = model_dir / "candidates" / stamp
        metrics = train_model(
            ratings,
            candidate / "checkpoint",
            split=split,
            preset=preset,
            seed=seed,
            device=device,
            baselines=False,
        )
        export_onnx(candidate / "checkpoint", candidate / "model.onnx", k)
        new = metrics["validation"]
        current_metrics = model_dir / "checkpoint" / METRICS
        outcome: dict[str, object] = {"candidate": str(candidate), "validation": new}
        if current_metrics.exists():
            current = json.loads(current_metrics.read_text())["validation"]
            worse = regression(new, current)  # type: ignore[arg-type]
            outcome["current_validation"] = current
            if worse > tolerance:
                outcome["promoted"] = False
                outcome["reason"] = (
                    f"candidate {new['metric']} {new['best']:.4f} is worse than the current "  # type: ignore[index]
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
    target, old = model_dir / "checkpoint", model_dir / ".checkpoint.old"
    staged = model_dir / ".checkpoint.new"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(candidate / "checkpoint", staged)
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staged.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    with atomic_path(model_dir / "model.onnx") as temporary:
        temporary.unlink()
        os.link(candidate / "model.onnx", temporary)
    fsync_dir(model_dir)
