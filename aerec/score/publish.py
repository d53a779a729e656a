"""Publishing recs.parquet atomically with its manifest.json and _SUCCESS marker."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from aerec.atomic import atomic_path, write_text_atomic

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def publish_recs(
    recs: pl.DataFrame, out: str | Path, model_version: str, k: int, extra: dict[str, object]
) -> dict[str, object]:
    """Replace `out` atomically, then manifest.json, then write _SUCCESS; return the manifest.

    _SUCCESS is removed first, so between the two replacements a reader that waits for
    _SUCCESS never pairs the new table with the old manifest.
    """
    out = Path(out)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata = {
        "aerec.model_version": model_version,
        "aerec.k": str(k),
        "aerec.generated_at": generated,
        "aerec.schema_version": SCHEMA_VERSION,
    }
    (out.parent / SUCCESS).unlink(missing_ok=True)
    with atomic_path(out) as temporary:
        recs.write_parquet(temporary, metadata=metadata, statistics=True)
        digest = file_sha256(temporary)
    manifest = {
        "file": out.name,
        "rows": recs.height,
        "users": recs["user_id"].n_unique(),
        "k": k,
        "sha256": digest,
        "model_version": model_version,
        "generated_at": generated,
        "schema_version": SCHEMA_VERSION,
        **extra,
    }
    write_text_atomic(out.parent / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    write_text_atomic(out.parent / SUCCESS, "")
    log.info("published %s: %d rows for %d users", out, manifest["rows"], manifest["users"])
    return manifest
