"""A published directory of runs: score into a dated run directory, make it current,
keep the last N (what `aerec nightly` and `score-all --out DIR/` write).

DIR/
  runs/<stamp>/    recs.parquet (or part-NNNNN.parquet), manifest.json, _SUCCESS of a run
  current          symlink to runs/<stamp> of the published run (switched by one rename)
  recs.parquet     -> current/recs.parquet (a single-file run); likewise manifest.json, _SUCCESS
  .lock
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from aerec.contracts import (
    CURRENT_LINK,
    DEFAULT_PARTS,
    LOCK_FILE,
    MAX_UNKNOWN_SHARE,
    MIN_ROWS_FRACTION,
    OWNED_PUBLISHED,
    PUBLISHED_NAMES,
    RECS_FILE,
    RUNS_DIR,
    SUCCESS_FILE,
    Manifest,
    run_stamp,
)
from aerec.errors import InputError
from aerec.io.lock import run_lock
from aerec.io.outputs import check_disjoint, claim_directory, is_legacy_layout, model_inputs
from aerec.io.pointer import link_through, resolve, switch
from aerec.io.stamped import prune_stamped
from aerec.score.pipeline import score_all
from aerec.score.publish import read_manifest
from aerec.score.ray_engine import RayOptions

log = logging.getLogger(__name__)


def publish_run(run_dir: Path, out_dir: Path) -> Manifest:
    """Make run_dir (complete: table, manifest, _SUCCESS) the published run.

    DIR/current is switched to runs/<stamp> by one rename, and DIR/recs.parquet,
    manifest.json and _SUCCESS are links through it: the three change together or not at
    all, whatever fails (a kill, a full disk).
    """
    switch(out_dir / CURRENT_LINK, Path(RUNS_DIR) / run_dir.name)
    names = [name for name in PUBLISHED_NAMES if (run_dir / name).exists()]
    link_through(out_dir, CURRENT_LINK, names)
    for name in set(PUBLISHED_NAMES) - set(names):  # a single file before, parts now
        if (out_dir / name).is_symlink():
            (out_dir / name).unlink()
    return read_manifest(run_dir)


def _written_by_older_aerec(out_dir: Path) -> bool:
    """A published directory of an aerec from before the ownership marker."""
    return is_legacy_layout(out_dir, PUBLISHED_NAMES, RUNS_DIR, {LOCK_FILE})


def _published_parts(run: Path | None) -> int | None:
    """How many parts the published run has (None: not partitioned, or no run)."""
    if run is None:
        return None
    try:
        return int(read_manifest(run)["partitioning"]["parts"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def score_dataset(
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
    users: str | Path | None = None,
    incremental: bool = False,
) -> Manifest:
    """One locked run into `out_dir`; returns the published manifest. The publish gates of
    score_all compare with the table published there. With `parts` (or the Ray engine)
    the run's table is partitioned: DIR/current/part-*.parquet. `incremental` reuses the
    published run's parts for users whose ratings did not change, when the model did not
    (aerec.score.incremental; a partitioned table, either engine)."""
    if keep < 1:
        raise InputError("--keep must be at least 1")
    out_dir = Path(out_dir)
    check_disjoint([out_dir], [ratings, *model_inputs(model)])
    claim_directory(out_dir, OWNED_PUBLISHED, _written_by_older_aerec)
    model = Path(model).resolve()  # once: a retrain may switch MODEL_DIR/current meanwhile
    with run_lock(out_dir / LOCK_FILE):
        reuse = resolve(out_dir / CURRENT_LINK) if incremental else None
        if incremental:
            parts = parts or _published_parts(reuse) or (None if engine == "ray" else DEFAULT_PARTS)
        started = time.perf_counter()
        stamp = run_stamp()
        run_dir = out_dir / RUNS_DIR / stamp
        log.info("run %s: model %s, ratings %s, output %s", stamp, model, ratings, out_dir)
        try:
            partitioned = parts is not None or engine == "ray"
            manifest = score_all(
                model,
                ratings,
                run_dir if partitioned else run_dir / RECS_FILE,
                k=k,
                batch_size=batch_size,
                device=device,
                max_unknown=max_unknown,
                min_rows_fraction=min_rows_fraction,
                published=out_dir,
                run_name=stamp,
                parts=parts,
                engine=engine,
                ray=ray,
                users=users,
                incremental_from=reuse,
            )
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            log.error("run %s failed; the published table is unchanged", stamp)
            raise
        published = publish_run(run_dir, out_dir)
        removed = prune_stamped(
            out_dir / RUNS_DIR,
            keep,
            protect={stamp},
            finished=lambda run: (run / SUCCESS_FILE).is_file(),
        )
        log.info(
            "run %s published: %s rows for %s users, k=%s, provider %s, %s users "
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
