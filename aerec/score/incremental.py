"""Incremental runs: rescore only the users whose ratings changed since the last run.

A partitioned run written for reuse (`aerec nightly --incremental`, either engine) also
writes _users/part-NNNNN.parquet: each user's fingerprint, a hash of the multiset of
(item, rating) the user was scored from, listed with its sha256 in the manifest. A later
run with the same model (same version and k, same partitioning) checks every file it
reuses against that manifest, compares the fingerprints, scores only new or changed users
(and every user of a part whose files failed the check), and builds each part from the
previous run's part (its unchanged users) and the fresh rows, so the table equals a full
run's. Users no longer in the ratings drop out. Memory holds the previous run's
fingerprints (16 bytes a user) and one part at a time.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from aerec.contracts import (
    SCHEMA_VERSION,
    TABLE_DIR,
    USERS_DIR,
    Manifest,
    PartRecord,
    mix64,
    part_bucket,
    user_bucket,
)
from aerec.data.idmap import IdMap
from aerec.errors import file_error
from aerec.io.sinks import read_manifest
from aerec.score.vectors import UserVectors

log = logging.getLogger(__name__)

FINGERPRINT_SCHEMA: dict[str, pl.DataType] = {"user_id": pl.Int64(), "fingerprint": pl.UInt64()}
FINGERPRINT_VERSION = 2  # of fingerprints(): manifests list their files under this version


def fingerprints(vectors: UserVectors) -> np.ndarray:
    """Each user's fingerprint: the wrapping sum of a hash of each (item column, rating),
    the rating by its exact float32 bits (the value the model is given)."""
    matrix = vectors.ratings
    bits = np.ascontiguousarray(matrix.data, dtype=np.float32).view(np.uint32).astype(np.int64)
    hashed = mix64((matrix.indices.astype(np.int64) << 32) | bits)
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


def verified_frame(path: Path, record: PartRecord) -> pl.DataFrame | None:
    """The Parquet file at `path` if it is exactly the one `record` lists (sha256, rows,
    users), read from the bytes that were checked; None, with a log line why, if not."""
    try:
        data = path.read_bytes()
    except OSError as error:
        problem = f"cannot be read ({error.strerror or error})"
    else:
        problem = ""
        if hashlib.sha256(data).hexdigest() != record["sha256"]:
            problem = "is not the file the previous manifest lists (sha256 differs)"
        else:
            frame = pl.read_parquet(io.BytesIO(data))
            if frame.height == record["rows"] and frame["user_id"].n_unique() == record["users"]:
                return frame
            problem = "does not hold the rows and users the previous manifest lists"
    log.warning("%s %s: its part is rescored in full", path, problem)
    return None


@dataclass(frozen=True)
class PreviousPart:
    """One part of a previous run, verified: its users' fingerprints and its rows."""

    users: np.ndarray  # int64, sorted
    prints: np.ndarray  # uint64, aligned with users
    rows: pl.DataFrame | None  # None: the previous table had no rows for this part

    def changed(self, users: np.ndarray, prints: np.ndarray) -> np.ndarray:
        """True for each user that is new or whose fingerprint differs."""
        if len(self.users) == 0:
            return np.ones(len(users), dtype=bool)
        position = np.minimum(np.searchsorted(self.users, users), len(self.users) - 1)
        return np.asarray((self.users[position] != users) | (self.prints[position] != prints))


NO_PART = PreviousPart(np.empty(0, np.int64), np.empty(0, np.uint64), None)


def reusable_manifest(directory: Path, model_version: str, k: int, parts: int) -> Manifest | None:
    """The manifest of the run in `directory` if this run may reuse its parts; None (and a
    log line why) if not."""
    try:
        manifest = read_manifest(directory)
        recorded: dict[str, object] = dict(manifest.get("fingerprints") or {})
        reasons = {
            "the model changed": manifest.get("model_version") != model_version,
            "k changed": manifest.get("k") != k,
            "the partitioning changed": manifest.get("partitioning", {}).get("parts") != parts,
            "the table's schema changed": manifest.get("schema_version") != SCHEMA_VERSION,
            "the previous run has no fingerprints of this version": (
                recorded.get("version") != FINGERPRINT_VERSION
            ),
        }
    except (OSError, ValueError, AttributeError) as error:
        log.info("full run: the previous run cannot be read (%s)", error)
        return None
    why = [reason for reason, applies in reasons.items() if applies]
    if why:
        log.info("full run: %s", ", ".join(why))
        return None
    return manifest


Listed = tuple[PartRecord | None, PartRecord | None]  # a part's rows and fingerprints


def listed_files(manifest: Manifest) -> dict[int, Listed]:
    """Each bucket of a reusable run: (its record in `parts`, its fingerprints')."""
    rows = {part_bucket(record["file"]): record for record in manifest.get("parts", [])}
    prints = {part_bucket(r["file"]): r for r in manifest["fingerprints"]["files"]}
    return {bucket: (rows.get(bucket), prints.get(bucket)) for bucket in sorted({*rows, *prints})}


def previous_part(directory: Path, records: Listed) -> PreviousPart | None:
    """A part of the run in `directory`, every file checked against the records its
    manifest holds; NO_PART if it lists none; None if a listed file fails the check (the
    part's users are then rescored in full)."""
    rows_record, prints_record = records
    if prints_record is None:
        return NO_PART
    prints = verified_frame(directory / USERS_DIR / prints_record["file"], prints_record)
    rows = None
    if rows_record is not None:
        rows = verified_frame(directory / TABLE_DIR / rows_record["file"], rows_record)
    if prints is None or (rows_record is not None and rows is None):
        return None
    prints = prints.sort("user_id")
    return PreviousPart(prints["user_id"].to_numpy(), prints["fingerprint"].to_numpy(), rows)


@dataclass(frozen=True)
class PreviousRun:
    """A published run whose parts the local engine reuses: every part verified up front;
    users of a part that failed are treated as changed."""

    directory: Path
    manifest: Manifest
    records: dict[int, Listed]
    users: np.ndarray  # int64, sorted: the users of the parts that passed
    prints: np.ndarray  # uint64, aligned with users
    distrusted: frozenset[int]  # buckets whose files failed the check

    def changed(self, users: np.ndarray, prints: np.ndarray) -> np.ndarray:
        """True for each user that is new, changed, or in a part that failed the check."""
        fresh = PreviousPart(self.users, self.prints, None).changed(users, prints)
        if self.distrusted:
            parts = self.manifest["partitioning"]["parts"]
            buckets = user_bucket(users, parts)
            fresh |= np.isin(buckets, np.fromiter(self.distrusted, np.int64))
        return fresh

    def rows(self, bucket: int) -> pl.DataFrame | None:
        """The previous rows of a part to merge (None: none to reuse), checked again as
        they are read: a file changed since the run started stops the run."""
        rows_record = self.records.get(bucket, (None, None))[0]
        if bucket in self.distrusted or rows_record is None:
            return None
        path = self.directory / TABLE_DIR / rows_record["file"]
        rows = verified_frame(path, rows_record)
        if rows is None:
            raise file_error(path, "changed while this run reused it")
        return rows


def previous_run(directory: Path, manifest: Manifest) -> PreviousRun:
    """The reusable run in `directory` (its `manifest`) with every user's fingerprint."""
    records = listed_files(manifest)
    users, prints, distrusted = [np.empty(0, np.int64)], [np.empty(0, np.uint64)], set()
    for bucket, listed in records.items():
        part = previous_part(directory, listed)
        if part is None:
            distrusted.add(bucket)
            continue
        users.append(part.users)
        prints.append(part.prints)
    order = np.argsort(all_users := np.concatenate(users), kind="stable")
    return PreviousRun(
        directory,
        manifest,
        records,
        all_users[order],
        np.concatenate(prints)[order],
        frozenset(distrusted),
    )
