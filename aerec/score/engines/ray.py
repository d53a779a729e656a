"""The Ray engine: Ray Data reads the ratings, groups them by user bucket, and a pool of
actors scores each bucket with the per-part function the local engine uses, one part each.

Every actor opens one ONNX Runtime session in `__init__`; `__call__` takes one bucket (all
ratings of its users, whole by the groupby's guarantee), builds the users' vectors, calls
`score_part` (whose per-batch function is `score_batch`, as on a single node) and
`merged_part`, and writes DIR/recs/part-NNNNN-<run>.parquet atomically, so a retried task
(a worker killed mid-run) rewrites the same complete part. The driver reads the model's
metadata without a session and receives one small record per part; the publish step
seals. The parts live on a file system every worker can write (local or shared).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from aerec import errors
from aerec.contracts import (
    DEFAULT_PARTS,
    RECS_SCHEMA,
    FingerprintsRecord,
    Manifest,
    PartRecord,
    part_file,
    user_bucket,
    users_file,
)
from aerec.data.layouts import detect_layout
from aerec.data.readers import canonical_block, write_canonical_parquet
from aerec.errors import AerecError, InputError, file_error, require
from aerec.io.atomic import atomic_path
from aerec.io.digest import InputFiles
from aerec.io.scratch import remove_abandoned, scratch_dir
from aerec.io.sinks import DirectorySink, RecsSink, Written, write_file, written_parts
from aerec.io.tally import Tally
from aerec.score.fallback import Popularity
from aerec.score.incremental import (
    FINGERPRINT_SCHEMA,
    FINGERPRINT_VERSION,
    Listed,
    listed_files,
    previous_part,
)
from aerec.score.job import Scored, ScoreJob
from aerec.score.memory import keep_large_buffers_out_of_the_heap
from aerec.score.part import incremental_record, merged_part, score_part
from aerec.score.scorer import BatchScorer
from aerec.score.session import ModelFile
from aerec.score.vectors import ReadCounts, build_user_vectors

log = logging.getLogger(__name__)

BUCKET = "_aerec_part"
ORDER = "_aerec_order"  # a rating's place in the input: file number * ROWS_PER_FILE + row
ROWS_PER_FILE = 1 << 40
RATINGS_PER_PART = 1_000_000  # default --parts: at least this many ratings per part
RATINGS_PER_PART_WARNING = 4_000_000  # a bucket is scored in one task: keep it in memory
BYTES_PER_TEXT_RATING = 20  # about, in the MovieLens text layouts (to choose --parts)
# A text file's ratings as Parquet, for the workers: inside the run's directory (which
# every worker can reach), removed before the run is published.
CONVERTED_RATINGS = ".ratings.parquet"


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray job runs (score-all --ray-* options)."""

    address: str | None = None  # an existing cluster ("auto", "ray://host:10001"); else local
    concurrency: int | None = None  # scoring actors; default: the cluster's CPUs // num_cpus - 1
    num_cpus: float = 1.0  # per actor, also its ONNX Runtime threads
    num_gpus: float = 0.0  # per actor (with --device cuda)


def _pieces(source: InputFiles) -> tuple[list[dict[str, Any]], int]:
    """One read task per row group of every listed file, with the place of its first row in
    the total order of the input (file number, then row); and the number of ratings."""
    pieces, count = [], 0
    for number, path in enumerate(source.files):
        try:
            metadata = pq.ParquetFile(path).metadata
        except (OSError, pa.ArrowException) as error:
            raise file_error(path, f"not a readable Parquet file: {error}") from None
        first = number * ROWS_PER_FILE
        for group in range(metadata.num_row_groups):
            pieces.append({"path": str(path), "row_group": group, "first": first})
            first += metadata.row_group(group).num_rows
        count += metadata.num_rows
    return pieces, count


def _read_pieces(pieces: pa.Table, parts: int, wanted: list[int] | None) -> pa.Table:
    """The row groups `pieces` names as canonical, validated ratings (errors name their own
    file), each rating with its place in the input's order and its user's bucket (only the
    `wanted` users' ratings, when given)."""
    frames = []
    for piece in pieces.to_pylist():
        path = piece["path"]
        try:
            block = pq.ParquetFile(path).read_row_group(piece["row_group"])
        except (OSError, pa.ArrowException) as error:
            raise file_error(path, f"not a readable Parquet file: {error}") from None
        frame = canonical_block(path, pl.from_arrow(block))  # type: ignore[arg-type]
        order = pl.int_range(pl.len(), dtype=pl.Int64) + piece["first"]
        frame = frame.with_columns(order.alias(ORDER))
        if wanted is not None:
            listed = pl.Series(wanted, dtype=pl.Int64).implode()
            frame = frame.filter(pl.col("user_id").is_in(listed))
        buckets = user_bucket(frame["user_id"].to_numpy(), parts)
        frames.append(frame.with_columns(pl.Series(BUCKET, buckets)))
    return pl.concat(frames).to_arrow()


@dataclass(frozen=True)
class PartJob:
    """What every scoring actor of one run needs to know besides the model."""

    k: int
    batch_size: int | None  # None: the provider's default
    table_dir: Path  # where the parts go
    users_dir: Path  # where the fingerprints go
    metadata: dict[str, str]  # the Parquet key-value metadata of each part
    source: str  # the ratings, as errors name them
    run_tag: str  # in every part file's name
    fingerprints: bool  # write each user's fingerprint (for a later incremental run)
    fallback: Popularity | None = None  # the rows of users without a known item
    listed: bool = False  # a --users run: report its users' ids (for those not found)
    previous: Path | None = None  # a run whose parts to reuse
    previous_files: dict[int, Listed] | None = None  # its manifest's records, by bucket


class PartScorer:
    """A Ray Data actor: one ONNX Runtime session; each call scores one bucket's users."""

    def __init__(
        self, model: str, model_data: Any, device: str, threads: int, job: PartJob
    ) -> None:
        import ray

        keep_large_buffers_out_of_the_heap()
        data = ray.get(model_data) if isinstance(model_data, ray.ObjectRef) else model_data
        self.scorer = BatchScorer(ModelFile(Path(model), data), device, threads)
        self.job = job

    def __call__(self, group: pa.Table) -> dict[str, Any]:
        job = self.job
        frame = pl.from_arrow(group)
        assert isinstance(frame, pl.DataFrame)
        bucket = int(frame[BUCKET][0])
        frame = frame.sort("user_id", ORDER).drop(BUCKET, ORDER)  # the input's order
        vectors = build_user_vectors(frame, self.scorer.info.items, job.source)
        record: dict[str, Any] = {
            **_EMPTY,
            "provider": self.scorer.provider,
            "distrusted": "",
            "health_exposure": b"",
            "health_sample": b"",
            "health_users": 0,
        }
        prints_record = _EMPTY
        rescored = np.empty(0, np.int64)
        if len(vectors.users) or len(vectors.cold_users):
            before = None
            if job.previous is not None:
                before = previous_part(job.previous, (job.previous_files or {}).get(bucket, _NONE))
                record["distrusted"] = users_file(bucket) if before is None else ""
            fingerprints = job.fingerprints or job.previous is not None
            part = score_part(
                self.scorer,
                vectors,
                before,
                self.scorer.users_per_batch(job.batch_size),
                job.k,
                fingerprints,
                job.fallback,
            )
            if part.prints is not None and part.prints.height:
                path = job.users_dir / users_file(bucket)
                prints_record, _ = _written(path, part.prints, {}, FINGERPRINT_SCHEMA)
            rows, rescored = part.rows, part.rescored
            if before is not None:
                rescored_ids = pl.Series("user_id", part.rescored, dtype=pl.Int64).implode()
                present = pl.Series("user_id", vectors.users.ids, dtype=pl.Int64)
                rows = merged_part(before.rows, present, rescored_ids, rows)
            if rows.height:
                path = job.table_dir / part_file(bucket, job.run_tag)
                written, health = _written(path, rows, job.metadata, RECS_SCHEMA)
                record.update(written)
                exposure, sample, ranked = health.to_bytes()
                record.update(health_exposure=exposure, health_sample=sample, health_users=ranked)
        read = asdict(ReadCounts.of(vectors, job.listed))  # "read_": ReadCounts has `users`
        record.update({f"read_{key}": value for key, value in read.items()})
        record["rescored_ids"] = rescored.astype("<i8").tobytes()  # one column type for all
        record.update({f"prints_{key}": value for key, value in prints_record.items()})
        return {key: [value] for key, value in record.items()}


_EMPTY: dict[str, Any] = {"file": "", "rows": 0, "users": 0, "sha256": ""}
_NONE: Listed = (None, None)


def _written(
    path: Path, rows: pl.DataFrame, metadata: dict[str, str], schema: dict[str, pl.DataType]
) -> tuple[dict[str, Any], Tally]:
    """One Parquet file written atomically (a retried task rewrites it whole); its record
    and its rows' health tally."""
    with atomic_path(path) as temporary:
        written = write_file(temporary, rows, metadata, schema)
    return {**written.parts[0], "file": path.name}, written.health


_RAISED_IN_TASK = re.compile(r"aerec\.errors\.(\w+): (.+)")
_SYSTEM_ERROR_IN_TASK = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)


def _system_cause(error: BaseException) -> OSError | None:
    """The system's refusal (a full disk, a permission) behind a Ray task failure, as one
    OSError with its errno and the system's words, instead of the task's traceback text."""
    found = _SYSTEM_ERROR_IN_TASK.search(str(error)) if isinstance(error, OSError) else None
    if found is None:
        return None
    number = int(found.group(1))
    return OSError(number, os.strerror(number))


def _aerec_cause(error: BaseException) -> AerecError | None:
    """The AerecError (bad input, NaN scores) behind a Ray task failure, if any.

    Ray Data re-raises a task's exception as a UserCodeException that keeps only its
    traceback text, so the error is found by its class name there when not as an object.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, AerecError):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    found = _RAISED_IN_TASK.search(str(error))
    kind = getattr(errors, found.group(1), None) if found else None
    if found and isinstance(kind, type) and issubclass(kind, AerecError):
        return kind(found.group(2).strip())
    return None


# Set before ray is imported: with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 and the node address
# 127.0.0.1 a local cluster's gcs_server, raylet and workers bind to loopback (without it,
# Ray 2.60 binds them to every interface: tests/score/test_ray_private.py lists them);
# RAY_AUTH_MODE=disabled keeps Ray from writing a token into the home directory, which no
# one outside this host can reach anyway.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


RAY_SCRATCH_PREFIX = "aerec-ray-"  # + pid + "-": a local cluster's session files
# Ray's longest socket path below its temp dir, and the limit of a Unix socket's path.
RAY_SOCKET_TAIL = len("/session_2026-12-02_00-00-00_000000_4194304/sockets/plasma_store")
MAX_SOCKET_PATH = 107


def _session_dir() -> Path | None:
    """A scratch directory for a local cluster's session files; None (Ray's own
    $TMPDIR/ray, left behind) where its socket paths would be too long."""
    remove_abandoned(RAY_SCRATCH_PREFIX, "local Ray cluster")
    scratch = scratch_dir(RAY_SCRATCH_PREFIX)
    if len(str(scratch)) + RAY_SOCKET_TAIL <= MAX_SOCKET_PATH:
        return scratch
    scratch.rmdir()
    log.warning("%s: too long for Ray's socket paths; its session files stay in its own", scratch)
    return None


@contextlib.contextmanager
def ray_session(options: RayOptions) -> Iterator[None]:
    """Connect to options.address, or start a local cluster on loopback whose session
    files (logs, sockets, spilled objects) live in a scratch directory of this run; a
    cluster started here is shut down and its directory removed when the block ends (one
    a killed run left is removed by the next). Enter it before anything imports ray."""
    if not options.address:
        if "ray" in sys.modules and any(
            os.environ.get(name) != value for name, value in LOOPBACK_ENV.items()
        ):
            raise AerecError(
                "ray was imported before aerec could bind a local cluster to loopback; "
                "set " + " ".join(f"{k}={v}" for k, v in LOOPBACK_ENV.items()) + " first"
            )
        for name, value in LOOPBACK_ENV.items():
            os.environ.setdefault(name, value)
    import ray

    if ray.is_initialized():
        yield
        return
    settings: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    scratch = None
    if not options.address:
        settings["_node_ip_address"] = "127.0.0.1"
        scratch = _session_dir()
        if scratch is not None:
            settings["_temp_dir"] = str(scratch)
    ours = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=options.address, **settings)
        signal.signal(signal.SIGTERM, ours)  # ray.init installs its own: exit 143, one line
        yield
    finally:
        signal.signal(signal.SIGTERM, ours)
        ray.shutdown()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _prepared_files(source: InputFiles, parts: int, wanted: pl.Series | None) -> Any:
    """A Ray Dataset of exactly the listed files, read a row group a task: each rating
    validated (errors name its own file), placed in the input's order (so a pair rated
    twice at one timestamp keeps the same rating on every run, as on the local engine) and
    tagged with its user's part.

    The driver lists the row groups from the Parquet footers: Ray Data's own reader would
    recurse into a directory's subfolders and gives no row's place in its file."""
    import ray.data

    pieces, count = _pieces(source)
    if count == 0:
        raise file_error(source.path, "file has no ratings")
    log.info("%d ratings in %d parts", count, parts)
    if count > parts * RATINGS_PER_PART_WARNING:
        log.warning("more than %d ratings per part: raise --parts", RATINGS_PER_PART_WARNING)
    users = None if wanted is None else wanted.to_list()
    return ray.data.from_items(pieces, override_num_blocks=max(1, len(pieces))).map_batches(
        _read_pieces,  # type: ignore[arg-type]
        batch_format="pyarrow",
        batch_size=1,
        fn_kwargs={"parts": parts, "wanted": users},
    )


class RayEngine:
    """Scores on a Ray cluster (an existing one, or a local one on loopback) into a
    partitioned table; the workers read Parquet (a file or a directory of them), into
    which the driver first converts a ratings file of a text layout."""

    parts_only = True

    def __init__(self, options: RayOptions | None = None) -> None:
        self.options = options or RayOptions()

    def check(self, source: InputFiles, sink: RecsSink) -> None:
        ratings = source.path
        if ratings.is_dir():
            if not source.files:
                raise file_error(ratings, "directory holds no .parquet file (--engine ray)")
        else:
            detect_layout(ratings)  # a missing, empty or unknown file: said before any work
        if not isinstance(sink, DirectorySink):
            raise InputError(
                f"{sink.path}: --engine ray writes a partitioned table; give --out DIR/"
            )

    def parts_for(self, ratings: Path) -> int | None:
        """One part per RATINGS_PER_PART ratings (from the Parquet footers), at least
        DEFAULT_PARTS, so a task's memory stays the same however many users there are.
        A text file's count is estimated from its size; None for what cannot be read:
        `check` then says why."""
        try:
            files = InputFiles.of(ratings).files
            if not ratings.is_dir() and ratings.suffix != ".parquet":
                count = ratings.stat().st_size // BYTES_PER_TEXT_RATING
            else:
                count = sum(pq.ParquetFile(path).metadata.num_rows for path in files)
        except (OSError, pa.ArrowException, InputError):
            return None
        return max(DEFAULT_PARTS, -(-count // RATINGS_PER_PART))

    def score(self, job: ScoreJob, sink: RecsSink) -> Scored:
        assert isinstance(sink, DirectorySink), "checked by RayEngine.check"
        sink.prepare()
        source, converted = job.source, None
        if not source.path.is_dir() and source.path.suffix != ".parquet":
            converted = sink.path / CONVERTED_RATINGS
            log.info("%s: converting to Parquet for the Ray workers", source.path)
            write_canonical_parquet(source.path, converted)
            source = InputFiles(converted, (converted,))
        try:
            records = self._records(job, sink, source)
        finally:
            if converted is not None:
                converted.unlink(missing_ok=True)
        for folder in (sink.table_dir, sink.users_dir):
            for stray in folder.glob(".*.tmp"):
                stray.unlink()  # left by a worker killed while writing
        counts = ReadCounts()
        for record in records:
            counts.add_counts(_counts(record))
        parts = [_part(r) for r in records if r["file"]]
        found = Manifest()
        if job.writes_fingerprints:
            files = [_record(r, "prints_") for r in records if r["prints_file"]]
            found["fingerprints"] = FingerprintsRecord(
                version=FINGERPRINT_VERSION, files=sorted(files, key=lambda r: r["file"])
            )
        if job.reuse is not None:
            ids = [np.frombuffer(r["rescored_ids"], dtype="<i8") for r in records]
            rescored = np.concatenate([np.empty(0, np.int64), *ids])
            distrusted = [str(r["distrusted"]) for r in records if r["distrusted"]]
            found["incremental"] = incremental_record(
                sink.path, job.reuse.directory, job.reuse.manifest, rescored, distrusted
            )
        provider = str(records[0]["provider"]) if records else "none"
        return Scored(written_parts(parts), counts, provider, found)

    def _records(
        self, job: ScoreJob, sink: DirectorySink, source: InputFiles
    ) -> list[dict[str, Any]]:
        """Every part's record, from a pool of PartScorer actors reading `source`."""
        with ray_session(self.options):
            return self._scored_parts(job, sink, source)

    def _scored_parts(
        self, job: ScoreJob, sink: DirectorySink, source: InputFiles
    ) -> list[dict[str, Any]]:
        import ray
        import ray.data

        options = self.options
        try:
            _quiet_ray_data()
            cpus = int(ray.cluster_resources().get("CPU", 1))
            size = options.concurrency or max(1, int((cpus - 1) // max(options.num_cpus, 1)))
            prepared = _prepared_files(source, sink.parts, job.wanted)
            scorer = {
                "model": str(job.model.path),
                "model_data": ray.put(job.model.data),  # the driver's bytes, read once
                "device": job.request.device,
                "threads": max(1, int(options.num_cpus)),
                "job": _part_job(job, sink),
            }
            return list(
                prepared.groupby(BUCKET)
                .map_groups(
                    PartScorer,
                    batch_format="pyarrow",
                    fn_constructor_kwargs=scorer,
                    compute=ray.data.ActorPoolStrategy(size=size),
                    num_cpus=options.num_cpus,
                    num_gpus=options.num_gpus,
                )
                .take_all()
            )
        except Exception as error:
            cause = _aerec_cause(error) or _system_cause(error)
            if cause is not None:
                raise cause from None
            raise


def _quiet_ray_data() -> None:
    """No progress bars and, unless -v, none of Ray Data's INFO lines per dataset (its
    execution plans and log paths): aerec's own log says what runs. Ray Data warns once
    that its bars are off; that once is spent here, under the warning's own key. (The
    `core_worker.cc ... E` line about actor arguments is Ray's C++ core, ray-project/ray
    issue 57733: not silenced, as that would hide its real errors too.)"""
    import ray.data
    from ray.util.debug import log_once

    ray.data.DataContext.get_current().enable_progress_bars = False
    log_once("ray_data_progress_manager_disabled")
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("ray.data").setLevel(logging.WARNING)


def _part_job(job: ScoreJob, sink: DirectorySink) -> PartJob:
    reuse = job.reuse
    return PartJob(
        k=job.k,
        batch_size=job.request.batch_size,
        table_dir=sink.table_dir,
        users_dir=sink.users_dir,
        metadata=job.metadata,
        source=str(job.source.path),
        run_tag=job.run["run"],
        fingerprints=job.request.fingerprints,
        fallback=job.fallback,
        listed=job.wanted is not None,
        previous=reuse.directory if reuse is not None else None,
        previous_files=listed_files(reuse.manifest) if reuse is not None else None,
    )


def _counts(record: dict[str, Any]) -> ReadCounts:
    """What one actor read."""
    return ReadCounts(
        users=int(record["read_users"]),
        ratings=int(record["read_ratings"]),
        unknown_item_ratings=int(record["read_unknown_item_ratings"]),
        users_without_known_items=int(record["read_users_without_known_items"]),
        users_without_candidates=int(record["read_users_without_candidates"]),
        per_item=np.asarray(record["read_per_item"], dtype=np.int64),
        seen_users=np.asarray(record["read_seen_users"], dtype=np.int64),
    )


def _part(record: dict[str, Any]) -> Written:
    """What one actor wrote: its part's record and health tally."""
    part = _record(record)
    health = Tally.from_bytes(
        record["health_exposure"], record["health_sample"], int(record["health_users"])
    )
    return Written(part["rows"], part["users"], (part,), health)


def _record(record: dict[str, Any], prefix: str = "") -> PartRecord:
    """A part's (or, with prefix "prints_", its fingerprints') record from an actor's."""
    return PartRecord(
        file=str(record[f"{prefix}file"]),
        rows=int(record[f"{prefix}rows"]),
        users=int(record[f"{prefix}users"]),
        sha256=str(record[f"{prefix}sha256"]),
    )


OPTIONS = (
    click.option("--ray-address", help="An existing Ray cluster (default: start a local one)."),
    click.option(
        "--ray-concurrency",
        type=click.IntRange(min=1),
        help="Scoring actors (default: the cluster's CPUs less one, / --ray-num-cpus).",
    ),
    click.option(
        "--ray-num-cpus",
        default=1.0,
        show_default=True,
        type=click.FloatRange(min=0.1),
        help="CPUs per scoring actor (its ONNX Runtime threads).",
    ),
    click.option(
        "--ray-num-gpus",
        default=0.0,
        show_default=True,
        type=click.FloatRange(min=0.0),
        help="GPUs per scoring actor.",
    ),
)


def from_options(
    ray_address: str | None, ray_concurrency: int | None, ray_num_cpus: float, ray_num_gpus: float
) -> RayEngine:
    """The engine of the --ray-* options, once ray is known to be installed."""
    require("ray", "ray")
    return RayEngine(RayOptions(ray_address, ray_concurrency, ray_num_cpus, ray_num_gpus))
