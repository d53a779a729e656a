"""The local engine: this process streams the ratings in user order, a chunk at a time,
scores each chunk while the next is read (`overlap`), and writes the table row group by
row group: memory is bounded by the chunk, the batch and the model, not by the number of
users. A file not sorted by user is first sorted on disk (the stream restarts once)."""

from __future__ import annotations

import contextlib
import functools
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aerec.contracts import RECS_SCHEMA, FingerprintsRecord, Manifest, part_file, users_file
from aerec.data.layouts import detect_layout
from aerec.data.stream import CHUNK_ROWS, NotSortedByUser, remove_abandoned_sorts
from aerec.io.digest import InputFiles
from aerec.io.sinks import (
    DirectorySink,
    PartitionedWriter,
    RecsSink,
    Written,
    write_file,
    written_parts,
)
from aerec.score.incremental import (
    FINGERPRINT_SCHEMA,
    FINGERPRINT_VERSION,
    PreviousRun,
    previous_run,
)
from aerec.score.job import Scored, ScoreJob
from aerec.score.overlap import in_background, write_behind
from aerec.score.part import incremental_record, merged_part, score_part
from aerec.score.scorer import BatchScorer
from aerec.score.vectors import ReadCounts, UserVectors, stream_user_vectors

FRESH_DIR = ".fresh"  # an incremental run's rows of rescored users, before the merge


class LocalEngine:
    """Scores in this process, into one file or a partitioned directory."""

    parts_only = False

    def __init__(self, overlap: bool = True, chunk_rows: int = CHUNK_ROWS) -> None:
        self.overlap = overlap
        self.chunk_rows = chunk_rows

    def check(self, source: InputFiles, sink: RecsSink) -> None:
        detect_layout(source.path)  # a missing, empty or unknown file: said before any work
        remove_abandoned_sorts()

    def parts_for(self, ratings: Path) -> int | None:
        return None

    def score(self, job: ScoreJob, sink: RecsSink) -> Scored:
        # opened once, after the reader has begun: ONNX Runtime's model load and graph
        # optimisation (seconds for a large catalogue) overlap the first chunk's parsing
        scorer = functools.cache(lambda: BatchScorer(job.model, job.request.device))
        try:
            return self._score(job, sink, scorer, sort=False)
        except NotSortedByUser:
            sink.abort()
            return self._score(job, sink, scorer, sort=True)

    @contextlib.contextmanager
    def _chunks(
        self, job: ScoreJob, counts: ReadCounts, sort: bool
    ) -> Iterator[Iterable[UserVectors]]:
        """The stream of vectors, closed when the block ends however it ends, so the
        reader thread stops and an on-disk sort's folder is removed before the error
        reaches the CLI (a SIGTERM included), not at interpreter exit."""
        request = job.request
        stream = stream_user_vectors(
            request.ratings, job.info.items, counts, job.wanted, sort, self.chunk_rows
        )
        chunks = in_background(stream) if self.overlap else stream
        try:
            yield chunks if job.progress is None else job.progress(chunks, "scoring chunks", None)
        finally:
            chunks.close()
            stream.close()

    def _score(
        self, job: ScoreJob, sink: RecsSink, scorer: Callable[[], BatchScorer], sort: bool
    ) -> Scored:
        counts = ReadCounts()
        with self._chunks(job, counts, sort) as chunks:
            return self._scored(job, sink, scorer(), chunks, counts)

    def _scored(
        self,
        job: ScoreJob,
        sink: RecsSink,
        scorer: BatchScorer,
        chunks: Iterable[UserVectors],
        counts: ReadCounts,
    ) -> Scored:
        if isinstance(sink, DirectorySink) and job.writes_fingerprints:
            written, records = _score_reusing(job, sink, scorer, chunks)
            return Scored(written, counts, scorer.provider, records)
        batch_size = scorer.users_per_batch(job.request.batch_size)
        with write_behind(sink.open(job.run)) as rows:
            for vectors in chunks:
                part = score_part(scorer, vectors, None, batch_size, job.k, False, job.fallback)
                rows.write(part.rows)
            return Scored(rows.close(), counts, scorer.provider)


def _score_reusing(
    job: ScoreJob, sink: DirectorySink, scorer: BatchScorer, chunks: Iterable[UserVectors]
) -> tuple[Written, Manifest]:
    """A partitioned run that writes each user's fingerprint and, with a reusable
    previous run, scores only new or changed users and merges each part with its."""
    reuse = None if job.reuse is None else previous_run(job.reuse.directory, job.reuse.manifest)
    sink.prepare()
    fresh = sink.path / FRESH_DIR if reuse is not None else sink.table_dir
    tag = job.run["run"]
    rescored: list[np.ndarray] = [np.empty(0, np.int64)]
    batch_size = scorer.users_per_batch(job.request.batch_size)
    table = PartitionedWriter(fresh, sink.parts, job.metadata, lambda b: part_file(b, tag))
    users = PartitionedWriter(sink.users_dir, sink.parts, {}, users_file, FINGERPRINT_SCHEMA)
    with write_behind(table) as rows, write_behind(users) as prints:
        for vectors in chunks:
            part = score_part(scorer, vectors, reuse, batch_size, job.k, True, job.fallback)
            assert part.prints is not None
            prints.write(part.prints)
            rows.write(part.rows)
            rescored.append(part.rescored)
        written = rows.close()
        files = list(prints.close().parts)
    records = Manifest(fingerprints=FingerprintsRecord(version=FINGERPRINT_VERSION, files=files))
    if reuse is None:
        return written, records
    changed = np.sort(np.concatenate(rescored))
    distrusted = [users_file(bucket) for bucket in reuse.distrusted]
    records["incremental"] = incremental_record(
        sink.path, reuse.directory, reuse.manifest, changed, distrusted
    )
    return _merge_parts(sink, reuse, changed, tag, job.metadata), records


def _merge_parts(
    sink: DirectorySink,
    previous: PreviousRun,
    changed: np.ndarray,
    run_tag: str,
    metadata: dict[str, str],
) -> Written:
    """Each part of the run: merged_part of the previous part's rows and the fresh rows
    of the rescored users (`changed`, sorted), one part in memory at a time."""
    parts = []
    changed_users = pl.Series("user_id", changed, dtype=pl.Int64).implode()
    for bucket in range(sink.parts):
        present_file = sink.users_dir / users_file(bucket)
        name = part_file(bucket, run_tag)
        fresh = sink.path / FRESH_DIR / name
        if not present_file.exists() and not fresh.exists():
            continue  # no user of this part in the ratings now
        present = pl.Series("user_id", [], dtype=pl.Int64)
        if present_file.exists():
            present = pl.read_parquet(present_file, columns=["user_id"])["user_id"]
        rows = merged_part(
            previous.rows(bucket),
            present,
            changed_users,
            pl.read_parquet(fresh) if fresh.exists() else None,
        )
        if rows.height:
            sink.table_dir.mkdir(exist_ok=True)
            parts.append(write_file(sink.table_dir / name, rows, metadata, RECS_SCHEMA))
    shutil.rmtree(sink.path / FRESH_DIR, ignore_errors=True)
    return written_parts(parts)


OPTIONS: tuple[Callable[[Any], Any], ...] = ()  # the local engine takes no options


def from_options() -> LocalEngine:
    return LocalEngine()
