"""Checksums of files aerec reads and writes (manifest.json records them)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def input_sha256(path: str | Path) -> str:
    """A file's sha256; for a directory of Parquet parts, the sha256 of the lines
    "<name> <sha256>" of its *.parquet files in name order."""
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    lines = "".join(f"{p.name} {file_sha256(p)}\n" for p in sorted(path.glob("*.parquet")))
    return hashlib.sha256(lines.encode()).hexdigest()
