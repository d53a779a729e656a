"""Where scored rows go: a sink takes one frame per batch and writes a table on close.

Every sink counts rows and users as they pass (a user's rows arrive in one batch), so
the manifest never re-reads what was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import polars as pl

from aerec.contracts import RECS_SCHEMA


@dataclass(frozen=True)
class Written:
    rows: int
    users: int


class RecsSink(Protocol):
    """Receives recs rows batch by batch, each user's rows within one batch."""

    def write(self, rows: pl.DataFrame) -> None: ...

    def close(self) -> Written: ...


class ParquetFileSink:
    """One Parquet file at `path`, with the given key-value metadata."""

    def __init__(self, path: str | Path, metadata: dict[str, str]) -> None:
        self.path = Path(path)
        self.metadata = metadata
        self._frames: list[pl.DataFrame] = []
        self._users = 0

    def write(self, rows: pl.DataFrame) -> None:
        self._frames.append(rows)
        self._users += rows["user_id"].n_unique()

    def close(self) -> Written:
        table = pl.concat(self._frames) if self._frames else pl.DataFrame(schema=RECS_SCHEMA)
        self._frames = []
        table.write_parquet(self.path, metadata=self.metadata, statistics=True)
        return Written(rows=table.height, users=self._users)
