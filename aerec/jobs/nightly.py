"""The nightly job: the current model scores every user into the published directory."""

from __future__ import annotations

from pathlib import Path

from aerec.contracts import MAX_UNKNOWN_SHARE, MIN_ROWS_FRACTION, Manifest
from aerec.score.dataset import score_dataset
from aerec.score.ray_engine import RayOptions


def nightly(
    model: str | Path,
    ratings: str | Path,
    out_dir: str | Path,
    k: int | None = None,
    keep: int = 7,
    batch_size: int = 512,
    device: str = "auto",
    max_unknown: float = MAX_UNKNOWN_SHARE,
    min_rows_fraction: float = MIN_ROWS_FRACTION,
    parts: int | None = None,
    engine: str = "local",
    ray: RayOptions | None = None,
    incremental: bool = False,
) -> Manifest:
    """One locked run into `out_dir` with the model `model` resolves to now (a retrain may
    switch MODEL_DIR/current while the run goes on); returns the published manifest."""
    return score_dataset(
        Path(model).resolve(),
        ratings,
        out_dir,
        k=k,
        keep=keep,
        batch_size=batch_size,
        device=device,
        max_unknown=max_unknown,
        min_rows_fraction=min_rows_fraction,
        parts=parts,
        engine=engine,
        ray=ray,
        incremental=incremental,
    )
