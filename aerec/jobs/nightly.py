"""The nightly run: score into a dated run directory, publish it atomically, keep the last N."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from aerec.contracts import (
    LOCK_FILE,
    MAX_UNKNOWN_SHARE,
    MIN_ROWS_FRACTION,
    RECS_FILE,
    RUNS_DIR,
    SUCCESS_FILE,
    Manifest,
    run_stamp,
)
from aerec.errors import InputError
from aerec.io.atomic import atomic_path, fsync_dir, write_text_atomic
from aerec.io.lock import run_lock
from aerec.score.pipeline import score_all
from aerec.score.publish import read_manifest, write_manifest

log = logging.getLogger(__name__)


def publish_run(run_dir: Path, out_dir: Path) -> Manifest:
    """Make run_dir's table the published one: DIR/recs.parquet, manifest.json, _SUCCESS.

    The table is hard-linked (copied across file systems) to a temporary name and renamed
    over DIR/recs.parquet, so a reader sees the old table or the new one, never a mix.
    """
    manifest = read_manifest(run_dir)
    manifest["run"] = run_dir.name
    (out_dir / SUCCESS_FILE).unlink(missing_ok=True)
    with atomic_path(out_dir / RECS_FILE) as temporary:
        temporary.unlink()
        try:
            os.link(run_dir / RECS_FILE, temporary)
        except OSError:
            shutil.copyfile(run_dir / RECS_FILE, temporary)
    write_manifest(out_dir, manifest)
    write_text_atomic(out_dir / SUCCESS_FILE, "")
    fsync_dir(out_dir)
    return manifest


def prune_runs(runs: Path, keep: int) -> list[str]:
    """Remove all but the newest `keep` finished run directories (and unfinished older ones)."""
    names = sorted(p.name for p in runs.iterdir() if p.is_dir())
    finished = [n for n in names if (runs / n / SUCCESS_FILE).exists()]
    kept = set(finished[-keep:])
    removed = [n for n in names if n not in kept and n < max(kept, default="")]
    for name in removed:
        shutil.rmtree(runs / name, ignore_errors=True)
    return removed


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
) -> Manifest:
    """One locked nightly run; returns the published manifest. The publish gates of
    score_all compare with the table published in `out_dir`."""
    if keep < 1:
        raise InputError("--keep must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(out_dir / LOCK_FILE):
        started = time.perf_counter()
        stamp = run_stamp()
        run_dir = out_dir / RUNS_DIR / stamp
        log.info("nightly run %s: model %s, ratings %s, output %s", stamp, model, ratings, out_dir)
        try:
            manifest = score_all(
                model,
                ratings,
                run_dir / RECS_FILE,
                k=k,
                batch_size=batch_size,
                device=device,
                max_unknown=max_unknown,
                min_rows_fraction=min_rows_fraction,
                published=out_dir,
            )
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            log.error("nightly run %s failed; the published table is unchanged", stamp)
            raise
        published = publish_run(run_dir, out_dir)
        removed = prune_runs(out_dir / RUNS_DIR, keep)
        log.info(
            "nightly run %s published: %s rows for %s users, k=%s, provider %s, %s users "
            "skipped, %.1f s; removed old runs: %s",
            stamp,
            manifest["rows"],
            manifest["users"],
            manifest["k"],
            manifest["provider"],
            manifest["users_skipped"],
            time.perf_counter() - started,
            ", ".join(removed) or "none",
        )
        return published
