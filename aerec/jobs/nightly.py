"""The nightly job: a published directory of runs. Score into a dated run directory, make
it current, keep the last N (`aerec nightly`).

DIR/
  runs/<stamp>/    recs/part-NNNNN-<stamp>.parquet (the table: nothing else in recs/),
                   manifest.json, _SUCCESS, and _users/ (fingerprints, --incremental only)
  current          symlink to runs/<stamp> of the published run (switched by one rename)
  .aerec           the marker that aerec owns DIR
  .lock

Every file of a run is named for that run and never rewritten, so a reader that resolves
`current` once reads one complete run, and one that reads through `current` while it moves
fails to open the old run's names instead of mixing two runs. A superseded run stays at
least `retain_minutes` (and while among the newest `keep`) for readers still on it.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import shutil
import time
from pathlib import Path

from aerec.contracts import (
    CURRENT_LINK,
    DEFAULT_PARTS,
    LEGACY_LINKS,
    LOCK_FILE,
    MANIFEST_FILE,
    OWNED_PUBLISHED,
    RETAIN_MINUTES,
    RUNS_DIR,
    SUCCESS_FILE,
    Manifest,
    run_stamp,
)
from aerec.errors import InputError
from aerec.io.lock import run_lock
from aerec.io.outputs import check_disjoint, claim_directory, is_legacy_layout, model_inputs
from aerec.io.pointer import resolve, switch
from aerec.io.sinks import DirectorySink, read_manifest
from aerec.io.stamped import prune_stamped, stamped_dirs
from aerec.jobs.attempts import logged_attempt
from aerec.logs import set_run
from aerec.score.job import Engine, ScoreRequest
from aerec.score.pipeline import score_all

log = logging.getLogger(__name__)


def publish_run(run_dir: Path, out_dir: Path) -> Manifest:
    """Make run_dir (complete: table, manifest, _SUCCESS) the published run: DIR/current
    is switched to runs/<stamp> by one rename. The links an older aerec kept in DIR
    (recs.parquet, manifest.json, _SUCCESS through current) are removed: they would name
    files this layout no longer has."""
    switch(out_dir / CURRENT_LINK, Path(RUNS_DIR) / run_dir.name)
    for name in LEGACY_LINKS:
        link = out_dir / name
        if link.is_symlink() and os.readlink(link) == f"{CURRENT_LINK}/{name}":
            link.unlink()
    return read_manifest(run_dir)


def recently_current(runs: Path, retain_minutes: float) -> set[str]:
    """The runs that were current less than `retain_minutes` ago: each run stopped being
    current when the next finished run was published (its _SUCCESS was written)."""
    finished = [p for p in stamped_dirs(runs) if (p / SUCCESS_FILE).is_file()]
    now, kept = time.time(), set()
    for run, successor in itertools.pairwise(finished):
        if now - (successor / SUCCESS_FILE).stat().st_mtime < retain_minutes * 60:
            kept.add(run.name)
    return kept


def _written_by_older_aerec(out_dir: Path) -> bool:
    """A published directory of an aerec from before the ownership marker."""
    return is_legacy_layout(out_dir, LEGACY_LINKS, RUNS_DIR, {LOCK_FILE})


def _published_parts(run: Path | None) -> int | None:
    """How many parts the published run has (None: not partitioned, or no run)."""
    if run is None:
        return None
    try:
        return int(read_manifest(run)["partitioning"]["parts"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclasses.dataclass(frozen=True)
class Retention:
    """Which finished runs stay: the newest `keep`, and every run superseded less than
    `minutes` ago (for readers still on it)."""

    keep: int = 7
    minutes: float = RETAIN_MINUTES


def nightly(
    request: ScoreRequest,
    out_dir: str | Path,
    engine: Engine,
    parts: int | None = None,
    retention: Retention | None = None,
    incremental: bool = False,
) -> Manifest:
    """One locked run into `out_dir`; returns the published manifest. The request's
    publish gates compare with the table published there. The run's table is always
    DIR/current/recs/part-*.parquet: `parts` by user bucket, else (incremental) the
    published run's, else the engine's choice, else one (incremental: DEFAULT_PARTS).
    `incremental` reuses the published run's parts for users whose ratings did not
    change, when the model did not (aerec.score.incremental; either engine)."""
    retention = retention or Retention()
    if retention.keep < 1:
        raise InputError("--keep must be at least 1")
    if retention.minutes < 0:
        raise InputError("--retain-minutes must be at least 0")
    out_dir = Path(out_dir)
    check_disjoint([out_dir], [request.ratings, *model_inputs(request.model)])
    claim_directory(out_dir, OWNED_PUBLISHED, _written_by_older_aerec)
    # once: a retrain may switch MODEL_DIR/current meanwhile
    request = dataclasses.replace(request, model=Path(request.model).resolve())
    with run_lock(out_dir / LOCK_FILE), logged_attempt(out_dir, {}) as attempt:
        current = resolve(out_dir / CURRENT_LINK)
        published_parts = _published_parts(current) if incremental else None
        fallback = DEFAULT_PARTS if incremental else 1  # an incremental run merges by part
        parts = parts or published_parts or engine.parts_for(request.ratings) or fallback
        this_run = dataclasses.replace(
            request,
            replaces=current / MANIFEST_FILE if current is not None else None,
            run_name=run_stamp(),
            incremental_from=current if incremental else None,
            fingerprints=incremental,
        )
        attempt.update(run=this_run.run_name, model=str(request.model))
        return _run_once(this_run, out_dir, engine, parts, retention)


def _run_once(
    request: ScoreRequest, out_dir: Path, engine: Engine, parts: int, retention: Retention
) -> Manifest:
    """Score the run into DIR/runs/<run_name>, publish it, prune (under the lock)."""
    stamp = str(request.run_name)
    set_run(stamp)
    run_dir = out_dir / RUNS_DIR / stamp
    log.info(
        "run %s: model %s, ratings %s, output %s", stamp, request.model, request.ratings, out_dir
    )
    started = time.perf_counter()
    try:
        manifest = score_all(request, DirectorySink(run_dir, parts), engine)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        log.error("run %s failed; the published table is unchanged", stamp)
        raise
    published = publish_run(run_dir, out_dir)
    removed = prune_stamped(
        out_dir / RUNS_DIR,
        retention.keep,
        protect={stamp} | recently_current(out_dir / RUNS_DIR, retention.minutes),
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
