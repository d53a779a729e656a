"""Where scored rows go: a sink takes one frame per batch and writes a table on close.

Every sink counts rows and users as they pass (a user's rows arrive in one batch), so
the manifest never re-reads what was written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import polars as pl
import pyarrow.parquet as pq

from aerec.contracts import RECS_SCHEMA, PartRecord, user_bucket
from aerec.io.digest import file_sha256

ROW_GROUP_ROWS = 500_000  # rows per Parquet row group (about 12 MB before compression)


@dataclass(frozen=True)
class Written:
    rows: int
    users: int
    parts: tuple[PartRecord, ...] = ()  # a partitioned table's parts, by file name


class RecsSink(Protocol):
    """Receives recs rows batch by batch, each user's rows within one batch."""

    def write(self, rows: pl.DataFrame) -> None: ...

    def close(self) -> Written: ...


class ParquetFileSink:
    """One Parquet file at `path`, with the given key-value metadata, written row group by
    row group as rows arrive: memory holds at most one row group."""

    def __init__(
        self,
        path: str | Path,
        metadata: dict[str, str],
        row_group_rows: int = ROW_GROUP_ROWS,
        schema: Mapping[str, pl.DataType] = RECS_SCHEMA,
    ) -> None:
        self.path = Path(path)
        self.row_group_rows = row_group_rows
        self._schema = pl.DataFrame(schema=schema).to_arrow().schema.with_metadata(metadata)
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


class PartitionedSink:
    """DIR/<name_of(bucket)>: each user's rows go to the part of user_bucket(user, parts).

    Rows arrive in user order, so each part is sorted by user (and rank) too. Parts are
    opened as their first user arrives; a part with no user is not written.
    """

    def __init__(
        self,
        directory: str | Path,
        parts: int,
        metadata: dict[str, str],
        name_of: Callable[[int], str],
        schema: Mapping[str, pl.DataType] = RECS_SCHEMA,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.parts = parts
        self.name_of = name_of  # a bucket's file name
        self.metadata = metadata
        self.schema = schema
        self.row_group_rows = max(10_000, ROW_GROUP_ROWS // parts)  # ~ROW_GROUP_ROWS pending
        self._sinks: dict[int, ParquetFileSink] = {}

    def write(self, rows: pl.DataFrame) -> None:
        buckets = pl.Series("_part", user_bucket(rows["user_id"].to_numpy(), self.parts))
        for (bucket,), part in rows.with_columns(buckets).group_by("_part", maintain_order=True):
            number = int(bucket)
            if number not in self._sinks:
                path = self.directory / self.name_of(number)
                self._sinks[number] = ParquetFileSink(
                    path, self.metadata, self.row_group_rows, self.schema
                )
            self._sinks[number].write(part.drop("_part"))

    def abort(self) -> None:
        """Close and remove every part written so far (a failed or restarted stream)."""
        for sink in self._sinks.values():
            with contextlib.suppress(Exception):
                sink.close()
            sink.path.unlink(missing_ok=True)
        self._sinks.clear()

    def close(self) -> Written:
        records = []
        for number in sorted(self._sinks):
            sink = self._sinks[number]
            written = sink.close()
            records.append(part_record(sink.path, written))
        return Written(
            rows=sum(r["rows"] for r in records),
            users=sum(r["users"] for r in records),
            parts=tuple(records),
        )


def part_record(path: Path, written: Written) -> PartRecord:
    return PartRecord(
        file=path.name, rows=written.rows, users=written.users, sha256=file_sha256(path)
    )
