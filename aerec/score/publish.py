"""Publishing a recommendations table with its manifest.json and _SUCCESS marker.

A table is one Parquet file (`publish_recs`) or a directory of parts by user bucket
(`write_parts`, or a distributed engine's workers, then `seal_parts`). Either way
the publish gates run before anything is replaced, and the manifest records every file's
sha256.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from aerec.contracts import (
    MANIFEST_FILE,
    RECS_META,
    SCHEMA_VERSION,
    SUCCESS_FILE,
    TABLE_DIR,
    Manifest,
    part_file,
    partitioning,
    table_sidecars,
)
from aerec.errors import AerecError, InputError
from aerec.io.atomic import atomic_group
from aerec.io.digest import file_sha256
from aerec.io.sinks import ParquetFileSink, PartitionedSink, Written

log = logging.getLogger(__name__)

Finish = Callable[[], Manifest]  # what only the end of a stream knows, or raise


def read_manifest(directory: Path) -> Manifest:
    manifest: Manifest = json.loads((directory / MANIFEST_FILE).read_text())
    return manifest


def _published_rows(manifest: Path) -> int:
    """Rows of the table this manifest describes (0, with a warning, when unreadable)."""
    try:
        return int(json.loads(manifest.read_text()).get("rows", 0))
    except (OSError, ValueError, TypeError, AttributeError) as error:
        log.warning("%s: unreadable manifest, row gate skipped (%s)", manifest, error)
        return 0


def table_metadata(run: Manifest) -> dict[str, str]:
    """The Parquet key-value metadata of every file of a run's table."""
    return {
        RECS_META["model_version"]: run["model_version"],
        RECS_META["k"]: str(run["k"]),
        RECS_META["generated_at"]: run["generated_at"],
        RECS_META["schema_version"]: SCHEMA_VERSION,
        RECS_META["score"]: run["score"],
    }


def stamped(run: Manifest) -> Manifest:
    """The run with its generation time and schema version."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Manifest(**run, generated_at=now, schema_version=SCHEMA_VERSION)


def _gated_manifest(
    out: Path,
    written: Written,
    run: Manifest,
    after: Finish | None,
    previous: Path | None,
    min_rows_fraction: float,
) -> Manifest:
    """The publish gates, then the manifest: `after` (e.g. the model-fit check) and the
    row gate against the table whose manifest is the file `previous`."""
    if after is not None:
        run = Manifest(**run, **after())
    if "users_read" in run:
        expected = run["users_read"] - run.get("users_without_candidates", 0)
        if written.users != expected:
            raise AerecError(
                f"{out}: the table holds {written.users} users but {expected} were read with "
                "an item left to recommend; nothing published"
            )
    if previous is not None and previous.is_file():
        before = _published_rows(previous)
        if written.rows < min_rows_fraction * before:
            raise InputError(
                f"{out}: {written.rows} rows, fewer than {min_rows_fraction:.0%} of the "
                f"{before} published; nothing published (--min-rows-fraction to override)"
            )
    return Manifest(rows=written.rows, users=written.users, **run)


def publish_recs(
    batches: Iterable[pl.DataFrame],
    out: str | Path,
    run: Manifest,
    after: Finish | None = None,
    previous: Path | None = None,
    min_rows_fraction: float = 0.0,
) -> Manifest:
    """Write the batches' rows to `out`, with its own manifest and _SUCCESS beside it
    (table_sidecars: recs.manifest.json, recs._SUCCESS), as a unit.

    `run` holds what the caller knows of the run (model_version and k at least); `after`,
    called once every batch has been written and before anything is replaced, adds what
    only the end of a stream knows (or raises to publish nothing). A table with fewer rows
    than `min_rows_fraction` of the one the manifest file `previous` describes is not
    published (InputError). The table, the manifest and the marker are all written under
    temporary names first and only then renamed into place (atomic_group), so a failure at
    any point, a full disk included, leaves the published three as they were.
    """
    out = Path(out)
    run = stamped(run)
    names = [out.name, *table_sidecars(out.name)]
    with atomic_group(out.parent, names) as (table, manifest_path, success):
        sink = ParquetFileSink(table, table_metadata(run))
        for rows in batches:
            sink.write(rows)
        written = sink.close()
        manifest = _gated_manifest(out, written, run, after, previous, min_rows_fraction)
        manifest["file"], manifest["sha256"] = out.name, file_sha256(table)
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        success.write_text("")
    log.info("published %s: %d rows for %d users", out, written.rows, written.users)
    return manifest


def write_parts(
    batches: Iterable[pl.DataFrame],
    directory: Path,
    parts: int,
    metadata: dict[str, str],
    run_tag: str,
) -> Written:
    """The batches' rows as part files by user bucket in `directory` (in a new run
    directory that nobody reads yet), named for the run; on failure the parts written so
    far are removed."""
    sink = PartitionedSink(directory, parts, metadata, lambda bucket: part_file(bucket, run_tag))
    try:
        for rows in batches:
            sink.write(rows)
        return sink.close()
    except BaseException:
        sink.abort()
        raise


def seal_parts(
    directory: Path,
    written: Written,
    parts: int,
    run: Manifest,
    after: Finish | None = None,
    previous: Path | None = None,
    min_rows_fraction: float = 0.0,
) -> Manifest:
    """The gates, then manifest.json (every part with its sha256) and _SUCCESS, for parts
    already written into `directory`/TABLE_DIR."""
    manifest = _gated_manifest(directory, written, run, after, previous, min_rows_fraction)
    manifest["table"], manifest["parts"] = TABLE_DIR, list(written.parts)
    manifest["partitioning"] = partitioning(parts)
    with atomic_group(directory, [MANIFEST_FILE, SUCCESS_FILE]) as (manifest_path, success):
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        success.write_text("")
    log.info(
        "wrote %s: %d rows for %d users in %d parts",
        directory,
        written.rows,
        written.users,
        len(written.parts),
    )
    return manifest
