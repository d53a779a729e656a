"""The one publish step of every run, whatever its engine and sink: the gates, then the
manifest (written once, every file with its sha256), then the seal.

It is the only caller of a sink's `seal`. A gate that fails raises before anything is
visible; the caller then aborts the sink, so the published table stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from aerec.contracts import InputRecord, Manifest
from aerec.errors import AerecError, GateRefused, file_error
from aerec.io.sinks import RecsSink, Written
from aerec.score.health import Replaced, check_health, describe_health, health_figures
from aerec.score.job import Scored, ScoreJob
from aerec.score.vectors import ReadCounts

log = logging.getLogger(__name__)


def publish(
    job: ScoreJob, sink: RecsSink, scored: Scored, input_sha256: Callable[[], str]
) -> Manifest:
    """Gate what the engine wrote, write its manifest and seal it; returns the manifest.

    Nothing is published (InputError) when more than the gates' share of ratings or users
    are of unknown items or the ratings do not look like the model's training data (the
    fit check), when the table has fewer rows than `min_rows_fraction` of the one it
    replaces or a health gate refuses it (aerec.score.health), and (AerecError) when it
    lacks a user read with an item left to recommend. `input_sha256`: the ratings' sha256.
    """
    request, counts, written = job.request, scored.counts, scored.written
    counts.check_fit(
        request.ratings,
        request.gates.max_unknown,
        job.info.item_counts,
        request.gates.min_agreement,
    )
    run = Manifest(
        **job.run,
        provider=scored.provider,
        **scored.records,
        input=InputRecord(
            path=str(request.ratings),
            resolved=str(Path(request.ratings).resolve()),
            sha256=input_sha256(),
        ),
        **_counted(counts, request.ratings),
        users_fallback=counts.users_without_known_items if job.fallback is not None else 0,
    )
    if job.wanted is not None:
        run["users_not_found"] = _not_found(job.wanted, counts, request.users)
    _check_coverage(sink.path, written, run)
    replaced = Replaced.read(job.replaces)
    _check_rows(sink.path, written, request.gates.min_rows_fraction, replaced)
    health = health_figures(
        written.health,
        written.users,
        job.info.items,
        job.info.item_counts,
        sink.sample_name,
        job.info.version,
        job.k,
        replaced,
    )
    check_health(sink.path, health, request.gates, replaced)
    manifest = Manifest(
        rows=written.rows, users=written.users, **run, **sink.listing(written), health=health
    )
    counts.warn(job.fallback is not None)  # before the line that says it is published
    sink.seal(manifest, written.health.sample())
    log.info("health: %s", describe_health(health))
    log.info(
        "published %s: %d rows for %d users%s",
        sink.path,
        written.rows,
        written.users,
        f" in {len(written.parts)} parts" if sink.parts is not None else "",
    )
    return manifest


def _counted(counts: ReadCounts, ratings: Path) -> Manifest:
    """The stream's counts for the manifest, once it has been read to the end."""
    if counts.users == 0:
        raise file_error(ratings, "no user has a rating of an item the model knows")
    return Manifest(
        users_skipped=counts.users_without_known_items,
        unknown_item_ratings=counts.unknown_item_ratings,
        users_read=counts.users,
        users_without_candidates=counts.users_without_candidates,
    )


def _not_found(wanted: pl.Series, counts: ReadCounts, listing: Path | None) -> int:
    """How many listed users have no rating at all; the first few are logged."""
    missing = np.setdiff1d(wanted.unique().to_numpy(), counts.seen_users)
    if len(missing):
        shown = ", ".join(str(int(user)) for user in missing[:5])
        log.warning(
            "%d of the %d users listed in %s have no rating: %s%s",
            len(missing),
            wanted.n_unique(),
            listing,
            shown,
            ", ..." if len(missing) > 5 else "",
        )
    return len(missing)


def _check_coverage(out: Path, written: Written, run: Manifest) -> None:
    """The table holds every user that was read with an item left to recommend, and
    every user given the fallback."""
    expected = run["users_read"] - run["users_without_candidates"] + run["users_fallback"]
    if written.users != expected:
        raise AerecError(
            f"{out}: the table holds {written.users} users but {expected} were read with "
            "an item left to recommend; nothing published"
        )


def _check_rows(
    out: Path, written: Written, min_rows_fraction: float, replaced: Replaced | None
) -> None:
    """The row gate against the table this one replaces."""
    if replaced is None:
        return
    before = _published_rows(replaced.manifest)
    if written.rows < min_rows_fraction * before:
        raise GateRefused(
            "min_rows_fraction",
            f"{out}: {written.rows} rows, fewer than {min_rows_fraction:.0%} of the "
            f"{before} published; nothing published (--min-rows-fraction to override)",
        )


def _published_rows(manifest: Manifest) -> int:
    """Rows of the table this manifest describes (0, with a warning, when malformed)."""
    try:
        return int(manifest.get("rows", 0))
    except (ValueError, TypeError, AttributeError) as error:
        log.warning("malformed manifest of the published table, row gate skipped (%s)", error)
        return 0
