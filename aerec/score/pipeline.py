"""score-all as a function: read ratings, build vectors, score, publish."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl

from aerec.contracts import (
    ENGINES,
    MANIFEST_FILE,
    MAX_UNKNOWN_SHARE,
    MIN_POPULARITY_AGREEMENT,
    MIN_ROWS_FRACTION,
    TABLE_DIR,
    USERS_DIR,
    FingerprintsRecord,
    IncrementalRecord,
    InputRecord,
    Manifest,
    Progress,
    run_stamp,
    table_sidecars,
    users_file,
)
from aerec.data.readers import detect_layout
from aerec.data.stream import CHUNK_ROWS, NotSortedByUser, remove_abandoned_sorts
from aerec.errors import InputError, file_error
from aerec.io.digest import InputFiles
from aerec.io.outputs import check_disjoint, check_output_dir, check_output_file, model_inputs
from aerec.io.sinks import PartitionedSink, Written
from aerec.score.incremental import (
    FINGERPRINT_SCHEMA,
    FINGERPRINT_VERSION,
    FRESH_DIR,
    PreviousRun,
    fingerprint_rows,
    merge_parts,
    previous_run,
    reusable_manifest,
    subset,
)
from aerec.score.memory import keep_large_buffers_out_of_the_heap
from aerec.score.overlap import in_background
from aerec.score.publish import (
    Finish,
    publish_recs,
    seal_parts,
    stamped,
    table_metadata,
    write_parts,
)
from aerec.score.ray_engine import RayOptions
from aerec.score.scorer import BatchScorer, score_users
from aerec.score.session import ModelFile
from aerec.score.vectors import ReadCounts, UserVectors, stream_user_vectors

log = logging.getLogger(__name__)


def read_user_ids(path: str | Path) -> pl.Series:
    """User ids from a file of one id per line (a header line is allowed)."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise file_error(path, "not UTF-8 text") from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if lines and not _is_whole_number(lines[0][1]):
        lines = lines[1:]  # a header
    for number, line in lines:
        if not _is_whole_number(line):
            raise file_error(path, f"not a user id: {line[:40]!r}", number)
        if not _is_id(line):
            raise file_error(path, f"user id {line[:40]} is outside the int64 range", number)
    if not lines:
        raise file_error(path, "lists no users")
    return pl.Series("user_id", [int(line) for _, line in lines], dtype=pl.Int64)


def _is_whole_number(text: str) -> bool:
    return text.removeprefix("-").isdigit()


def _is_id(text: str) -> bool:
    """A whole number that fits int64."""
    return _is_whole_number(text) and -(2**63) <= int(text) < 2**63


def score_all(
    model: str | Path,
    ratings: str | Path,
    out: str | Path,
    k: int | None = None,
    batch_size: int = 512,
    device: str = "auto",
    users: str | Path | None = None,
    progress: Progress | None = None,
    incremental_from: str | Path | None = None,
    overlap: bool = True,
    chunk_rows: int = CHUNK_ROWS,
    max_unknown: float = MAX_UNKNOWN_SHARE,
    min_agreement: float = MIN_POPULARITY_AGREEMENT,
    min_rows_fraction: float = MIN_ROWS_FRACTION,
    published: str | Path | None = None,
    run_name: str | None = None,
    parts: int | None = None,
    engine: str = "local",
    ray: RayOptions | None = None,
    fingerprints: bool = False,
) -> Manifest:
    """Score every user (or those listed in `users`) and publish the top-k table.

    The ratings stream through in user order, a chunk at a time, while the previous batch
    is scored (`overlap`), and the table is written row group by row group: memory is
    bounded by the chunk, the batch and the model, not by the number of users. A file not
    sorted by user is first sorted on disk.

    Nothing is published (InputError) when the model scores NaN, when more than
    `max_unknown` of the ratings or users are of items the model does not know, when the
    ratings' item popularity ranks unlike the model's training data's (Spearman below
    `min_agreement`), or when
    the table has fewer rows than `min_rows_fraction` of the one published in
    `published` (a run directory holding manifest.json; default for a single file: the
    manifest of the file `out` replaces). `run_name`
    is recorded in the manifest as "run".

    With `parts`, `out` is a new directory that receives a partitioned table (part files
    by user bucket, then manifest.json and _SUCCESS); `engine` "ray" scores it on a Ray
    cluster (`ray` options), reading Parquet ratings (a file or a directory of parts).
    `incremental_from` (a previous partitioned run, of either engine) lets an unchanged
    model rescore only the users whose ratings changed (aerec.score.incremental);
    `fingerprints` writes each user's fingerprint beside the parts so a later run can.
    """
    started = time.perf_counter()
    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    source = InputFiles.of(ratings)  # once: what is read is exactly what is hashed
    if engine == "ray":
        _check_ray_input(source)
    else:
        detect_layout(Path(ratings))  # a missing, empty or unknown file: said before any work
        remove_abandoned_sorts()
    single_file = parts is None and engine == "local"
    previous = _checked_outputs(Path(out), single_file, [ratings, *model_inputs(model)], published)
    keep_large_buffers_out_of_the_heap()
    model_file = ModelFile.read(model)  # once: every session of this run scores these bytes
    scorer = BatchScorer(model_file, device)
    info = scorer.info
    k = info.rows_per_user(k)
    wanted = read_user_ids(users) if users is not None else None
    run = Manifest(k=k, model_version=info.version, score=info.score, provider=scorer.provider)
    if run_name is not None or not single_file:
        run["run"] = run_name or run_stamp()  # a partitioned table's files carry it
    # The input's checksum is read beside the scoring, not before it.
    hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aerec-sha256")
    digest = hashing.submit(source.sha256)

    def finisher(counts: ReadCounts) -> Finish:
        def finish() -> Manifest:
            counts.check_fit(ratings, max_unknown, info.item_counts, min_agreement)
            return Manifest(
                input=InputRecord(path=str(ratings), sha256=digest.result()),
                **_counted(counts, ratings),
            )

        return finish

    def on_ray() -> tuple[Manifest, ReadCounts]:
        from aerec.score.ray_engine import score_parts_on_ray

        counts = ReadCounts()
        reuse = None
        if incremental_from is not None and parts is not None:
            previous_manifest = reusable_manifest(Path(incremental_from), info.version, k, parts)
            if previous_manifest is not None:
                reuse = (Path(incremental_from), previous_manifest)
        manifest = score_parts_on_ray(
            model_file,
            source,
            Path(out),
            parts,
            run,
            wanted,
            batch_size,
            device,
            ray or RayOptions(),
            finisher(counts),
            counts,
            previous,
            min_rows_fraction,
            reuse,
            fingerprints,
        )
        return manifest, counts

    def publish(sort: bool) -> tuple[Manifest, ReadCounts]:
        counts = ReadCounts()
        chunks: Iterable[UserVectors] = stream_user_vectors(
            ratings, info.items, counts, wanted, sort, chunk_rows
        )
        if overlap:
            chunks = in_background(chunks)
        if progress is not None:
            chunks = progress(chunks, "scoring chunks", None)
        finish = finisher(counts)
        if parts is None:
            rows = (score_users(scorer, vectors, batch_size, k) for vectors in chunks)
            return publish_recs(rows, out, run, finish, previous, min_rows_fraction), counts
        reuse = None
        if incremental_from is not None:
            reuse = previous_run(Path(incremental_from), info.version, k, parts)
        table = PartitionedRun(
            scorer, Path(out), parts, stamped(run), batch_size, k, reuse, fingerprints
        )
        written = table.write(chunks)
        return seal_parts(
            Path(out), written, parts, table.run, finish, previous, min_rows_fraction
        ), counts

    try:
        if engine == "ray":
            manifest, counts = on_ray()
        else:
            try:
                manifest, counts = publish(sort=False)
            except NotSortedByUser:
                manifest, counts = publish(sort=True)
    finally:
        hashing.shutdown(wait=True, cancel_futures=True)
    counts.warn()
    seconds = time.perf_counter() - started
    log.info(
        "scored %d users in %.1f s (%.0f users/s) on %s",
        counts.users,
        seconds,
        counts.users / seconds,
        scorer.provider,
    )
    return manifest


class PartitionedRun:
    """The local engine's partitioned table: parts by user bucket in TABLE_DIR, plus (when
    asked, or when reusing) each user's fingerprint in _users/; with a reusable previous
    run, only new or changed users are scored and the parts are merged with its parts."""

    def __init__(
        self,
        scorer: BatchScorer,
        out: Path,
        parts: int,
        run: Manifest,
        batch_size: int,
        k: int,
        reuse: PreviousRun | None,
        fingerprints: bool,
    ) -> None:
        self.scorer, self.out, self.parts, self.run = scorer, out, parts, run
        self.batch_size, self.k, self.reuse = batch_size, k, reuse
        self.metadata = table_metadata(run)
        self.prints = (
            PartitionedSink(out / USERS_DIR, parts, {}, users_file, FINGERPRINT_SCHEMA)
            if fingerprints or reuse is not None
            else None
        )
        self.rescored: list[np.ndarray] = []

    def _rows(self, chunks: Iterable[UserVectors]) -> Iterator[pl.DataFrame]:
        for vectors in chunks:
            if self.prints is None:
                yield score_users(self.scorer, vectors, self.batch_size, self.k)
                continue
            prints = fingerprint_rows(vectors)
            self.prints.write(prints)
            if self.reuse is not None:
                changed = self.reuse.changed(vectors.users.ids, prints["fingerprint"].to_numpy())
                self.rescored.append(vectors.users.ids[changed])
                vectors = subset(vectors, changed)
            yield score_users(self.scorer, vectors, self.batch_size, self.k)

    def write(self, chunks: Iterable[UserVectors]) -> Written:
        fresh = self.out / (FRESH_DIR if self.reuse is not None else TABLE_DIR)
        tag = self.run["run"]
        try:
            written = write_parts(self._rows(chunks), fresh, self.parts, self.metadata, tag)
            prints = self.prints.close() if self.prints is not None else None
        except BaseException:
            if self.prints is not None:
                self.prints.abort()
            raise
        if prints is not None:
            self.run["fingerprints"] = FingerprintsRecord(
                version=FINGERPRINT_VERSION, files=list(prints.parts)
            )
        if self.reuse is None:
            return written
        rescored = np.sort(np.concatenate([np.empty(0, np.int64), *self.rescored]))
        self.run["incremental"] = IncrementalRecord(
            from_run=self.reuse.manifest.get("run", self.reuse.directory.name),
            rescored_users=len(rescored),
        )
        log.info("incremental run: %d users rescored, the rest reused", len(rescored))
        return merge_parts(self.out, self.reuse, rescored, self.parts, self.metadata, tag)


def _checked_outputs(
    out: Path, single_file: bool, inputs: list[str | Path], published: str | Path | None
) -> Path | None:
    """Check where the run writes (before any work) and return the manifest its row gate
    compares with: `published`'s, else the one of the single file `out` replaces."""
    manifest, success = (out.with_name(name) for name in table_sidecars(out.name))
    if single_file:
        check_output_file(out)
        check_disjoint([out, manifest, success], inputs)
    else:
        check_output_dir(out, (), (), "new (empty) output")
        check_disjoint([out], inputs)
    if published is not None:  # a run directory (or where none is published yet)
        return Path(published) / MANIFEST_FILE
    return manifest if single_file else None


def _check_ray_input(source: InputFiles) -> None:
    """The Ray engine reads Parquet: a .parquet file or a directory of them."""
    ratings = source.path
    if ratings.is_dir():
        if not source.files:
            raise file_error(ratings, "directory holds no .parquet file (--engine ray)")
    elif ratings.suffix != ".parquet" or not ratings.is_file():
        raise file_error(
            ratings,
            "--engine ray reads Parquet ratings (a .parquet file or a directory of them), "
            "with columns user_id,item_id,rating[,timestamp]; convert this file first",
        )


def _counted(counts: ReadCounts, ratings: str | Path) -> Manifest:
    """The stream's counts for the manifest, once it has been read to the end."""
    if counts.users == 0:
        raise file_error(ratings, "no user has a rating of an item the model knows")
    return Manifest(
        users_skipped=counts.users_without_known_items,
        unknown_item_ratings=counts.unknown_item_ratings,
        users_read=counts.users,
        users_without_candidates=counts.users_without_candidates,
    )
