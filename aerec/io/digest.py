"""Checksums of files aerec reads and writes (manifest.json records them)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


def file_sha256(path: str | Path, block_bytes: int = 1 << 20) -> str:
    """The file's sha256, read into one reused buffer (no fresh memory a block)."""
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(block_bytes))
    with Path(path).open("rb", buffering=0) as handle:
        while read := handle.readinto(buffer):
            digest.update(buffer[:read])
    return digest.hexdigest()


@dataclass(frozen=True)
class InputFiles:
    """The files a ratings path names, enumerated once so that what a run reads is exactly
    what its manifest hashes: the file itself, or a directory's *.parquet files at its top
    level in name order (subfolders and hidden files are neither read nor hashed)."""

    path: Path
    files: tuple[Path, ...]

    @staticmethod
    def of(path: str | Path) -> InputFiles:
        path = Path(path)
        if not path.is_dir():
            return InputFiles(path, (path,))
        found = [p for p in path.glob("*.parquet") if p.is_file() and not p.name.startswith(".")]
        return InputFiles(path, tuple(sorted(found, key=lambda p: p.name)))

    def sha256(self) -> str:
        """A file's sha256; for a directory, the sha256 of the lines "<name> <sha256>" of
        its listed files."""
        if not self.path.is_dir():
            return file_sha256(self.path)
        lines = "".join(f"{p.name} {file_sha256(p)}\n" for p in self.files)
        return hashlib.sha256(lines.encode()).hexdigest()
