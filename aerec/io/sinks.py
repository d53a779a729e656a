"""Where scored rows go: the only writers of recs tables.

Two levels. A row writer (`ParquetFileWriter`, `PartitionedWriter`) takes one frame per
batch and writes Parquet files as rows arrive, counting rows and users as they pass (a
user's rows arrive in one batch), so the manifest never re-reads what was written. A
`RecsSink` is a whole table an engine writes into and the publish step seals: one
Parquet file with its sidecars (`FileSink`), or a partitioned directory (`DirectorySink`).
Nothing is visible under the table's names until `seal`; `abort` removes what was written.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import polars as pl
import pyarrow.parquet as pq

from aerec.contracts import (
    HEALTH_SAMPLE_FILE,
    MANIFEST_FILE,
    RECS_META,
    RECS_SCHEMA,
    SCHEMA_VERSION,
    SUCCESS_FILE,
    TABLE_DIR,
    USERS_DIR,
    Manifest,
    PartRecord,
    part_file,
    partitioning,
    table_sidecars,
    user_bucket,
)
from aerec.errors import file_error
from aerec.io.atomic import AtomicGroup, atomic_group
from aerec.io.digest import file_sha256
from aerec.io.outputs import check_disjoint, check_output_dir, check_output_file
from aerec.io.tally import Tally

ROW_GROUP_ROWS = 500_000  # rows per Parquet row group (about 12 MB before compression)


@dataclass(frozen=True)
class Written:
    rows: int
    users: int
    parts: tuple[PartRecord, ...] = ()  # a partitioned table's parts, by file name
    health: Tally = field(default_factory=Tally, compare=False)  # of recs rows only


class RowWriter(Protocol):
    """Receives recs rows batch by batch, each user's rows within one batch."""

    def write(self, rows: pl.DataFrame) -> None: ...

    def close(self) -> Written: ...


class ParquetFileWriter:
    """One Parquet file at `path`, with the given key-value metadata, written row group by
    row group as rows arrive: memory holds at most one row group. Recs rows are tallied
    for the health figures as they pass."""

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
        self._tally = Tally() if dict(schema) == RECS_SCHEMA else None

    def write(self, rows: pl.DataFrame) -> None:
        if self._tally is not None:
            self._tally.observe(rows)
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
        return Written(rows=self._rows, users=self._users, health=self._tally or Tally())


def write_file(
    path: Path, rows: pl.DataFrame, metadata: dict[str, str], schema: Mapping[str, pl.DataType]
) -> Written:
    """One whole Parquet file (a part, or its fingerprints): its record is the one part."""
    writer = ParquetFileWriter(path, metadata, schema=schema)
    writer.write(rows)
    return as_part(path, writer.close())


class PartitionedWriter:
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
        self._writers: dict[int, ParquetFileWriter] = {}

    def write(self, rows: pl.DataFrame) -> None:
        buckets = pl.Series("_part", user_bucket(rows["user_id"].to_numpy(), self.parts))
        for (bucket,), part in rows.with_columns(buckets).group_by("_part", maintain_order=True):
            number = int(bucket)
            if number not in self._writers:
                path = self.directory / self.name_of(number)
                self._writers[number] = ParquetFileWriter(
                    path, self.metadata, self.row_group_rows, self.schema
                )
            self._writers[number].write(part.drop("_part"))

    def close(self) -> Written:
        return written_parts([as_part(w.path, w.close()) for _, w in sorted(self._writers.items())])


def as_part(path: Path, written: Written) -> Written:
    """What was written into the file `path`, as the one part of a table."""
    record = PartRecord(
        file=path.name, rows=written.rows, users=written.users, sha256=file_sha256(path)
    )
    return Written(written.rows, written.users, (record,), written.health)


def written_parts(parts: Sequence[Written]) -> Written:
    """A partitioned table's totals, records and tally from its parts'."""
    health = Tally()
    for part in parts:
        health.merge(part.health)
    records = [record for part in parts for record in part.parts]
    return Written(
        rows=sum(r["rows"] for r in records),
        users=sum(r["users"] for r in records),
        parts=tuple(sorted(records, key=lambda r: r["file"])),
        health=health,
    )


def table_metadata(run: Manifest) -> dict[str, str]:
    """The Parquet key-value metadata of every file of a run's table."""
    return {
        RECS_META["model_version"]: run["model_version"],
        RECS_META["k"]: str(run["k"]),
        RECS_META["generated_at"]: run["generated_at"],
        RECS_META["schema_version"]: SCHEMA_VERSION,
        RECS_META["score"]: run["score"],
    }


def read_manifest(directory: Path) -> Manifest:
    """The manifest.json of a partitioned table (a run directory)."""
    manifest: Manifest = json.loads((directory / MANIFEST_FILE).read_text())
    return manifest


def _write_manifest(path: Path, manifest: Manifest) -> None:
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


class RecsSink(Protocol):
    """A table being written: engines write its rows, the publish step seals it."""

    path: Path
    sample_name: str  # the health sample's file, beside the manifest

    @property
    def parts(self) -> int | None:
        """None: one Parquet file; else the parts of a partitioned table."""
        ...

    def check(self, inputs: Sequence[str | Path]) -> Path | None:
        """Refuse (exit 2) to write where aerec may not, before any work; returns the
        manifest of the table this one replaces (None: none)."""
        ...

    def open(self, run: Manifest) -> RowWriter:
        """A writer for the rows of `run` (a stamped manifest), invisible until sealed."""
        ...

    def listing(self, written: Written) -> Manifest:
        """What the manifest records of the written table's files."""
        ...

    def seal(self, manifest: Manifest, sample: pl.DataFrame) -> None:
        """Make the written table, its health sample, its manifest and its completion
        marker visible."""
        ...

    def abort(self) -> None:
        """Remove everything this sink wrote; what was there before stays."""
        ...


class FileSink:
    """One Parquet file with its own manifest, _SUCCESS and health sample beside it
    (table_sidecars: recs.parquet -> recs.manifest.json, recs._SUCCESS, recs.health.parquet),
    replaced as a unit: the four are written under temporary names and renamed into place
    only when sealed, so a failure at any point, a full disk included, leaves the published
    four as they were."""

    parts: None = None

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest, success, sample = table_sidecars(self.path.name)
        self.names = [self.path.name, sample, manifest, success]  # the marker last
        self.sample_name = sample
        self._group: AtomicGroup | None = None

    def check(self, inputs: Sequence[str | Path]) -> Path | None:
        check_output_file(self.path)
        check_disjoint([self.path.with_name(name) for name in self.names], inputs)
        return self.path.with_name(self.names[2])

    def _opened(self) -> AtomicGroup:
        if self._group is None:
            raise RuntimeError(f"{self.path}: the sink was not opened")
        return self._group

    def open(self, run: Manifest) -> RowWriter:
        self.abort()
        self._group = AtomicGroup(self.path.parent, self.names)
        return ParquetFileWriter(self._group.temporaries[0], table_metadata(run))

    def listing(self, written: Written) -> Manifest:
        return Manifest(file=self.path.name, sha256=file_sha256(self._opened().temporaries[0]))

    def seal(self, manifest: Manifest, sample: pl.DataFrame) -> None:
        _, sample_path, manifest_path, success = self._opened().temporaries
        sample.write_parquet(sample_path, compression="zstd")
        _write_manifest(manifest_path, manifest)
        success.write_text("")
        self._opened().commit()
        self._group = None

    def abort(self) -> None:
        if self._group is not None:
            self._group.discard()
            self._group = None


class DirectorySink:
    """A partitioned table in a new (or empty) directory: the parts by user bucket in
    DIR/recs/ (named for the run, nothing else in that folder), then DIR/manifest.json
    and DIR/_SUCCESS, written last. Engines write the parts (and, for incremental runs,
    the users' fingerprints in DIR/_users/); a reader waits for _SUCCESS."""

    sample_name = HEALTH_SAMPLE_FILE

    def __init__(self, path: str | Path, parts: int) -> None:
        self.path = Path(path)
        self.parts = parts
        self.table_dir = self.path / TABLE_DIR
        self.users_dir = self.path / USERS_DIR
        self._made = False

    def check(self, inputs: Sequence[str | Path]) -> Path | None:
        if self.path.is_dir() and not self.path.is_symlink() and any(self.path.iterdir()):
            raise file_error(
                self.path,
                "is not empty: a partitioned table is written into a new or empty "
                "directory (to publish one again and again in one place: aerec nightly)",
            )
        check_output_dir(self.path, (), (), "new (empty) output")
        check_disjoint([self.path], inputs)
        return None

    def prepare(self) -> None:
        """Create the directory (its creation is remembered, for abort)."""
        if not self.path.exists():
            self.path.mkdir(parents=True)
            self._made = True
        elif any(self.path.iterdir()) and not self._made:
            raise file_error(self.path, "is no longer empty; nothing written")

    def open(self, run: Manifest) -> RowWriter:
        self.prepare()
        tag = run["run"]
        return PartitionedWriter(
            self.table_dir, self.parts, table_metadata(run), lambda b: part_file(b, tag)
        )

    def listing(self, written: Written) -> Manifest:
        return Manifest(
            table=TABLE_DIR, parts=list(written.parts), partitioning=partitioning(self.parts)
        )

    def seal(self, manifest: Manifest, sample: pl.DataFrame) -> None:
        names = [HEALTH_SAMPLE_FILE, MANIFEST_FILE, SUCCESS_FILE]
        with atomic_group(self.path, names) as (sample_path, manifest_path, success):
            sample.write_parquet(sample_path, compression="zstd")
            _write_manifest(manifest_path, manifest)
            success.write_text("")

    def abort(self) -> None:
        if self._made:
            shutil.rmtree(self.path, ignore_errors=True)
            self._made = False
        elif self.path.is_dir():  # it was empty: everything in it is this run's
            for entry in self.path.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
