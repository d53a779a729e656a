"""Incremental runs: rescore only the users whose ratings changed since the last run.

Every partitioned run of the local engine also writes _users/part-NNNNN.parquet: each
user's fingerprint, a hash of the multiset of (item, rating) the user was scored from.
A later run with the same model (same version and k, same partitioning) compares the
fingerprints, scores only new or changed users, and builds each part from the previous
run's part (its unchanged users) and the fresh rows, so the table equals a full run's.
Users no longer in the ratings drop out. Memory holds the previous run's fingerprints
(16 bytes a user) and one part at a time.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from aerec.contracts import PART_FILE, RECS_SCHEMA, USERS_DIR, Manifest, mix64
from aerec.data.idmap import IdMap
from aerec.io.sinks import ParquetFileSink, Written, part_record
from aerec.score.publish import read_manifest
from aerec.score.vectors import UserVectors

log = logging.getLogger(__name__)

FINGERPRINT_SCHEMA: dict[str, pl.DataType] = {"user_id": pl.Int64(), "fingerprint": pl.UInt64()}
FRESH_DIR = ".fresh"  # a run's rows of rescored users, before the parts are merged


def fingerprints(vectors: UserVectors) -> np.ndarray:
    """Each user's fingerprint: the wrapping sum of a hash of each (item column, rating)."""
    matrix = vectors.ratings
    halves = np.rint(matrix.data * 2).astype(np.int64)  # ratings are half stars at finest
    hashed = mix64((matrix.indices.astype(np.int64) << 8) ^ halves)
    return np.add.reduceat(hashed, matrix.indptr[:-1]) if len(hashed) else hashed


def fingerprint_rows(vectors: UserVectors) -> pl.DataFrame:
    return pl.DataFrame(
        {"user_id": vectors.users.ids, "fingerprint": fingerprints(vectors)},
        schema=FINGERPRINT_SCHEMA,
    )


def subset(vectors: UserVectors, keep: np.ndarray) -> UserVectors:
    """The users where `keep` is true (the counts of dropped ratings are not carried)."""
    rows = np.flatnonzero(keep)
    return UserVectors(IdMap(vectors.users.ids[rows]), vectors.ratings.take(rows), 0, 0)


@dataclass(frozen=True)
class PreviousRun:
    """A published run whose parts can be reused: its directory and users' fingerprints."""

    directory: Path
    manifest: Manifest
    users: np.ndarray  # int64, sorted
    prints: np.ndarray  # uint64, aligned with users

    def changed(self, users: np.ndarray, prints: np.ndarray) -> np.ndarray:
        """True for each user that is new or whose fingerprint differs."""
        if len(self.users) == 0:
            return np.ones(len(users), dtype=bool)
        position = np.minimum(np.searchsorted(self.users, users), len(self.users) - 1)
        return np.asarray((self.users[position] != users) | (self.prints[position] != prints))


def reusable_manifest(directory: Path, model_version: str, k: int, parts: int) -> Manifest | None:
    """The manifest of the run in `directory` if this run may reuse its parts; None (and a
    log line why) if not."""
    try:
        manifest = read_manifest(directory)
    except (OSError, ValueError) as error:
        log.info("full run: the previous run cannot be read (%s)", error)
        return None
    reasons = {
        "the model changed": manifest.get("model_version") != model_version,
        "k changed": manifest.get("k") != k,
        "the partitioning changed": manifest.get("partitioning", {}).get("parts") != parts,
        "the previous run has no fingerprints": not (directory / USERS_DIR).is_dir(),
    }
    why = [reason for reason, applies in reasons.items() if applies]
    if why:
        log.info("full run: %s", ", ".join(why))
        return None
    return manifest


def previous_run(directory: Path, model_version: str, k: int, parts: int) -> PreviousRun | None:
    """The run in `directory` with every user's fingerprint, if this run may reuse it."""
    manifest = reusable_manifest(directory, model_version, k, parts)
    if manifest is None:
        return None
    frame = pl.read_parquet(directory / USERS_DIR / "*.parquet").sort("user_id")
    return PreviousRun(
        directory, manifest, frame["user_id"].to_numpy(), frame["fingerprint"].to_numpy()
    )


def merged_part(
    previous_part: Path, present: pl.Series, changed: pl.Series, fresh: pl.DataFrame | None
) -> pl.DataFrame:
    """One part: the previous part's rows of users `present` now and not `changed` (an
    imploded list), with the `fresh` rows of the rescored users, sorted by user and rank."""
    frames = [] if fresh is None else [fresh]
    if previous_part.exists():
        kept = pl.col("user_id").is_in(present.implode()) & ~pl.col("user_id").is_in(changed)
        frames.append(pl.read_parquet(previous_part).filter(kept))
    if not frames:
        return pl.DataFrame(schema=RECS_SCHEMA)
    return pl.concat(frames).sort("user_id", "rank")


def part_fingerprints(directory: Path, name: str) -> PreviousRun:
    """One part's users and fingerprints in the run in `directory` (none if absent)."""
    path = directory / USERS_DIR / name
    if not path.exists():
        return PreviousRun(directory, Manifest(), np.empty(0, np.int64), np.empty(0, np.uint64))
    frame = pl.read_parquet(path).sort("user_id")
    return PreviousRun(
        directory, Manifest(), frame["user_id"].to_numpy(), frame["fingerprint"].to_numpy()
    )


def merge_parts(
    run: Path, previous: PreviousRun, changed: np.ndarray, parts: int, metadata: dict[str, str]
) -> Written:
    """Each part of `run`: the previous part's rows of users still present and unchanged,
    with the fresh rows of rescored users, sorted by user and rank. `changed` lists (sorted)
    the users rescored."""
    records = []
    changed_users = pl.Series("user_id", changed, dtype=pl.Int64).implode()
    for bucket in range(parts):
        name = PART_FILE.format(bucket=bucket)
        if not (run / USERS_DIR / name).exists():
            continue  # no user of this part in the ratings now
        present = pl.read_parquet(run / USERS_DIR / name, columns=["user_id"])["user_id"]
        fresh = run / FRESH_DIR / name
        rows = merged_part(
            previous.directory / name,
            present,
            changed_users,
            pl.read_parquet(fresh) if fresh.exists() else None,
        )
        if rows.height == 0:
            continue
        sink = ParquetFileSink(run / name, metadata)
        sink.write(rows)
        records.append(part_record(run / name, sink.close()))
    shutil.rmtree(run / FRESH_DIR, ignore_errors=True)
    return Written(
        rows=sum(r["rows"] for r in records),
        users=sum(r["users"] for r in records),
        parts=tuple(records),
    )
