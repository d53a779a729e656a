"""Where scored rows go: a sink takes one frame per batch and writes a table on close.

Every sink counts rows and users as they pass (a user's rows arrive in one batch), so
the manifest never re-reads what was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import polars as pl
import pyarrow.parquet as pq

from aerec.contracts import RECS_SCHEMA

ROW_GROUP_ROWS = 500_000  # rows per Parquet row group (about 12 MB before compression)


@dataclass(frozen=True)
class Written:
    rows: int
    users: int


class RecsSink(Protocol):
    """Receives recs rows batch by batch, each user's rows within one batch."""

    def write(self, rows: pl.DataFrame) -> None: ...

    def close(self) -> Written: ...


class ParquetFileSink:
    """One Parquet file at `path`, with the given key-value metadata, written row group by
    row group as rows arrive: memory holds at most one row group."""

    def __init__(
        self, path: str | Path, metadata: dict[str, str], row_group_rows: int = ROW_GROUP_ROWS
    ) -> None:
        self.path = Path(path)
        self.row_group_rows = row_group_rows
        self._schema = pl.DataFrame(schema=RECS_SCHEMA).to_arrow().schema.with_metadata(metadata)
        self._writer = pq.ParquetWriter(self.path, self._schema, compression="zstd")
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0
        self._rows = 0
        self._users = 0

    def write(self, rows: pl.DataFrame) -> None:
        self._pending.append(rows)
        self._pending_rows += rows.height
        self._rows += rows.height
        self._users += rows["user_id"].n_unique()
        if self._pending_rows >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            table = pl.concat(self._pending).to_arrow().cast(self._schema)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._pending, self._pending_rows = [], 0

    def close(self) -> Written:
        self._flush()
        self._writer.close()
        return Written(rows=self._rows, users=self._users)
