"""The per-part function both engines call: users' vectors -> fingerprints -> rescore
the new or changed users -> merge with the previous part's rows of the others.

A Ray actor calls it on one whole part; the local engine on each chunk of the stream
(the chunk's users, of any part), merging every part once the stream has passed, since
a part's users arrive spread over the whole stream. Next to it: the incremental record
both engines put in the manifest. The per-batch function under it is score_batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl

from aerec.contracts import RECS_SCHEMA, RESCORED_FILE, IncrementalRecord, Manifest
from aerec.score.batch import Scorer
from aerec.score.fallback import Popularity
from aerec.score.incremental import fingerprint_rows, subset
from aerec.score.scorer import score_users
from aerec.score.vectors import UserVectors

log = logging.getLogger(__name__)


class Previous(Protocol):
    """The fingerprints of an earlier run (one part of it, or all of it)."""

    def changed(self, users: np.ndarray, prints: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class PartRows:
    """What scoring some users of a part gave."""

    rows: pl.DataFrame  # the top-k rows of the rescored users
    prints: pl.DataFrame | None  # every user's fingerprint (when asked or reusing)
    rescored: np.ndarray  # int64: the users scored (all of them without a previous run)


def score_part(
    scorer: Scorer,
    vectors: UserVectors,
    previous: Previous | None,
    batch_size: int,
    k: int,
    fingerprints: bool,
    fallback: Popularity | None = None,
) -> PartRows:
    """Score the users of `vectors` that `previous` does not already hold unchanged; with
    `fallback`, its rows for the users without a known item (never fingerprinted: they
    are written afresh by every run)."""
    prints = fingerprint_rows(vectors) if fingerprints or previous is not None else None
    cold = vectors.cold_users
    if previous is not None and prints is not None:
        changed = previous.changed(vectors.users.ids, prints["fingerprint"].to_numpy())
        vectors = subset(vectors, changed)
    rows = score_users(scorer, vectors, batch_size, k)
    if fallback is not None and len(cold):
        rows = pl.concat([rows, fallback.rows(cold)]).sort("user_id", "rank")
    return PartRows(rows, prints, vectors.users.ids)


def merged_part(
    previous_rows: pl.DataFrame | None,
    present: pl.Series,
    rescored: pl.Series,
    fresh: pl.DataFrame | None,
) -> pl.DataFrame:
    """One part: the previous part's rows of users `present` now and not `rescored` (an
    imploded list), with the `fresh` rows of the rescored users, sorted by user and rank."""
    frames = [] if fresh is None else [fresh]
    if previous_rows is not None:
        kept = pl.col("user_id").is_in(present.implode()) & ~pl.col("user_id").is_in(rescored)
        frames.append(previous_rows.filter(kept))
    if not frames:
        return pl.DataFrame(schema=RECS_SCHEMA)
    return pl.concat(frames).sort("user_id", "rank")


def incremental_record(
    run: Path, previous: Path, manifest: Manifest, rescored: np.ndarray, distrusted: Sequence[str]
) -> IncrementalRecord:
    """The manifest's record of an incremental run (into the directory `run`) from the run
    in `previous` (its `manifest`), its log lines, and the file of the `rescored` ids."""
    if distrusted:
        log.warning(
            "%d parts of %s failed the check against its manifest and were rescored in full: %s",
            len(distrusted),
            previous,
            ", ".join(sorted(distrusted)[:5]),
        )
    log.info("incremental run: %d users rescored, the rest reused", len(rescored))
    ids = pl.DataFrame({"user_id": np.sort(rescored.astype(np.int64))})
    ids.write_parquet(run / RESCORED_FILE, compression="zstd")
    return IncrementalRecord(
        from_run=manifest.get("run", previous.name),
        rescored_users=len(rescored),
        rescored_file=RESCORED_FILE,
    )
