"""Publishing recs.parquet atomically with its manifest.json and _SUCCESS marker."""

from __future__ import annotations

import hashlib
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
    Manifest,
)
from aerec.errors import InputError
from aerec.io.atomic import atomic_group
from aerec.io.sinks import ParquetFileSink

log = logging.getLogger(__name__)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(directory: Path) -> Manifest:
    manifest: Manifest = json.loads((directory / MANIFEST_FILE).read_text())
    return manifest


def _published_rows(directory: Path) -> int:
    """Rows of the table published in `directory` (0, with a warning, when unreadable)."""
    try:
        return int(read_manifest(directory).get("rows", 0))
    except (OSError, ValueError, TypeError) as error:
        log.warning("%s: unreadable manifest, row gate skipped (%s)", directory, error)
        return 0


def publish_recs(
    batches: Iterable[pl.DataFrame],
    out: str | Path,
    run: Manifest,
    after: Callable[[], Manifest] | None = None,
    previous: Path | None = None,
    min_rows_fraction: float = 0.0,
) -> Manifest:
    """Write the batches' rows to `out`, with manifest.json and _SUCCESS beside it, as a unit.

    `run` holds what the caller knows of the run (model_version and k at least); `after`,
    called once every batch has been written and before anything is replaced, adds what
    only the end of a stream knows (or raises to publish nothing). A table with fewer rows
    than `min_rows_fraction` of the one whose manifest.json is in `previous` is not
    published (InputError). The table, the manifest and the marker are all written under
    temporary names first and only then renamed into place (atomic_group), so a failure at
    any point, a full disk included, leaves the published three as they were.
    """
    out = Path(out)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata = {
        RECS_META["model_version"]: run["model_version"],
        RECS_META["k"]: str(run["k"]),
        RECS_META["generated_at"]: generated,
        RECS_META["schema_version"]: SCHEMA_VERSION,
    }
    names = [out.name, MANIFEST_FILE, SUCCESS_FILE]
    with atomic_group(out.parent, names) as (table, manifest_path, success):
        sink = ParquetFileSink(table, metadata)
        for rows in batches:
            sink.write(rows)
        written = sink.close()
        if after is not None:
            run = Manifest(**run, **after())
        if previous is not None and (previous / MANIFEST_FILE).is_file():
            before = _published_rows(previous)
            if written.rows < min_rows_fraction * before:
                raise InputError(
                    f"{out}: {written.rows} rows, fewer than {min_rows_fraction:.0%} of the "
                    f"{before} published; nothing published (--min-rows-fraction to override)"
                )
        manifest = Manifest(
            file=out.name,
            rows=written.rows,
            users=written.users,
            k=run["k"],
            sha256=file_sha256(table),
            model_version=run["model_version"],
            generated_at=generated,
            schema_version=SCHEMA_VERSION,
        )
        manifest.update(run)
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        success.write_text("")
    log.info("published %s: %d rows for %d users", out, written.rows, written.users)
    return manifest
