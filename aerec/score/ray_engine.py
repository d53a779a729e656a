"""score-all on a Ray cluster: Ray Data reads the ratings, groups them by user bucket, and
a pool of actors scores each bucket with the local loop's own functions, one part each.

Every actor opens one ONNX Runtime session in `__init__`; `__call__` takes one bucket (all
ratings of its users, whole by the groupby's guarantee), builds the users' vectors, scores
them with `score_users` (whose per-batch function is `score_batch`, as on a single node)
and writes DIR/part-NNNNN.parquet atomically, so a retried task (a worker killed mid-run)
rewrites the same complete part. The driver receives one small record per part and writes
the manifest. The parts live on a file system every worker can write (local or shared).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from aerec import errors
from aerec.contracts import (
    DEFAULT_PARTS,
    RECS_SCHEMA,
    TABLE_DIR,
    USERS_DIR,
    FingerprintsRecord,
    IncrementalRecord,
    Manifest,
    PartRecord,
    part_file,
    user_bucket,
    users_file,
)
from aerec.data.readers import canonical_block
from aerec.errors import AerecError
from aerec.io.atomic import atomic_path
from aerec.io.digest import InputFiles
from aerec.io.sinks import ParquetFileSink, Written, part_record
from aerec.score.incremental import (
    FINGERPRINT_SCHEMA,
    FINGERPRINT_VERSION,
    Listed,
    fingerprint_rows,
    listed_files,
    merged_part,
    previous_part,
    subset,
)
from aerec.score.memory import keep_large_buffers_out_of_the_heap
from aerec.score.publish import Finish, seal_parts, stamped, table_metadata
from aerec.score.scorer import BatchScorer, score_users
from aerec.score.session import ModelFile
from aerec.score.vectors import ReadCounts, build_user_vectors

log = logging.getLogger(__name__)

BUCKET = "_aerec_part"
RATINGS_PER_PART = 1_000_000  # default --parts: at least this many ratings per part
RATINGS_PER_PART_WARNING = 4_000_000  # a bucket is scored in one task: keep it in memory


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray job runs (score-all --ray-* options)."""

    address: str | None = None  # an existing cluster ("auto", "ray://host:10001"); else local
    concurrency: int | None = None  # scoring actors; default: the cluster's CPUs // num_cpus - 1
    num_cpus: float = 1.0  # per actor, also its ONNX Runtime threads
    num_gpus: float = 0.0  # per actor (with --device cuda)


def _prepare(block: pa.Table, parts: int, source: str, wanted: list[int] | None) -> pa.Table:
    """A Ray Data block as canonical, validated ratings with each user's bucket (only the
    `wanted` users' ratings, when given)."""
    frame = canonical_block(source, pl.from_arrow(block))  # type: ignore[arg-type]
    if wanted is not None:
        frame = frame.filter(pl.col("user_id").is_in(pl.Series(wanted, dtype=pl.Int64).implode()))
    buckets = user_bucket(frame["user_id"].to_numpy(), parts)
    return frame.with_columns(pl.Series(BUCKET, buckets)).to_arrow()


@dataclass(frozen=True)
class PartJob:
    """What every scoring actor of one run needs to know besides the model."""

    k: int
    batch_size: int
    directory: Path  # the run's output directory (parts in TABLE_DIR, fingerprints in _users)
    metadata: dict[str, str]  # the Parquet key-value metadata of each part
    source: str  # the ratings, as errors name them
    run_tag: str  # in every part file's name
    fingerprints: bool  # write each user's fingerprint (for a later incremental run)
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
        frame = frame.drop(BUCKET).sort("user_id", maintain_order=True)
        vectors = build_user_vectors(frame, self.scorer.info.items, job.source)
        record: dict[str, Any] = {"file": "", "rows": 0, "users": 0, "sha256": ""}
        prints_record: dict[str, Any] = {"file": "", "rows": 0, "users": 0, "sha256": ""}
        scored, distrusted = vectors, ""
        if len(vectors.users):
            prints = fingerprint_rows(vectors)
            if job.fingerprints or job.previous is not None:
                path = job.directory / USERS_DIR / users_file(bucket)
                written = _write(path, prints, {}, FINGERPRINT_SCHEMA)
                prints_record = dict(part_record(path, written))
            before = None
            if job.previous is not None:
                listed = (job.previous_files or {}).get(bucket, (None, None))
                before = previous_part(job.previous, listed)
                distrusted = users_file(bucket) if before is None else ""
            if before is not None:
                scored = subset(
                    vectors, before.changed(vectors.users.ids, prints["fingerprint"].to_numpy())
                )
            rows = score_users(self.scorer, scored, job.batch_size, job.k)
            if before is not None:
                changed = pl.Series("user_id", scored.users.ids, dtype=pl.Int64).implode()
                present = pl.Series("user_id", vectors.users.ids, dtype=pl.Int64)
                rows = merged_part(before.rows, present, changed, rows)
            if rows.height:
                path = job.directory / TABLE_DIR / part_file(bucket, job.run_tag)
                written = _write(path, rows, job.metadata, RECS_SCHEMA)
                record = dict(part_record(path, written))
        record.update(asdict(ReadCounts.of(vectors)), rescored_users=len(scored.users))
        record.update({f"prints_{key}": value for key, value in prints_record.items()})
        record["distrusted"] = distrusted
        return {key: [value] for key, value in record.items()}


def _write(
    path: Path, rows: pl.DataFrame, metadata: dict[str, str], schema: Mapping[str, pl.DataType]
) -> Written:
    """One Parquet file written atomically (a retried task rewrites it whole)."""
    with atomic_path(path) as temporary:
        sink = ParquetFileSink(temporary, metadata, schema=schema)
        sink.write(rows)
        return sink.close()


_RAISED_IN_TASK = re.compile(r"aerec\.errors\.(\w+): (.+)")


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


def start_ray(options: RayOptions) -> bool:
    """Connect to options.address, or start a local cluster on loopback; True if this
    call started it (and so must shut it down). Call it before anything imports ray."""
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
        return False
    settings: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    ours = signal.getsignal(signal.SIGTERM)
    if options.address:
        ray.init(address=options.address, **settings)
    else:
        ray.init(_node_ip_address="127.0.0.1", **settings)
    signal.signal(signal.SIGTERM, ours)  # ray.init installs its own: exit 143, one line
    return True


def _prepared_files(source: InputFiles, parts: int | None, wanted: pl.Series | None) -> Any:
    """A Ray Dataset of exactly the listed files, each block validated as canonical ratings
    (errors name its own file) and tagged with its users' part, and the ratings' count.

    One read per file, united: Ray Data recurses into a directory's subfolders, and Ray
    2.60 given a list of paths fails in its HTTP filesystem probe when fsspec's aiohttp is
    not installed; validating each file before the union also means a file whose column
    has another type is named instead of failing the union."""
    import ray.data

    reads = [(path, ray.data.read_parquet(str(path))) for path in source.files]
    count = sum(read.count() for _, read in reads)  # from the Parquet footers
    parts = parts or max(DEFAULT_PARTS, -(-count // RATINGS_PER_PART))
    users = None if wanted is None else wanted.to_list()
    prepared = [
        read.map_batches(
            _prepare,  # type: ignore[arg-type]
            batch_format="pyarrow",
            fn_kwargs={"parts": parts, "source": str(path), "wanted": users},
        )
        for path, read in reads
    ]
    dataset = prepared[0].union(*prepared[1:]) if len(prepared) > 1 else prepared[0]
    return dataset, count, parts


def score_parts_on_ray(
    model: ModelFile,
    source: InputFiles,
    directory: Path,
    parts: int | None,
    run: Manifest,
    wanted: pl.Series | None,
    batch_size: int,
    device: str,
    options: RayOptions,
    after: Finish,
    counts: ReadCounts,
    previous: Path | None,
    min_rows_fraction: float,
    reuse: tuple[Path, Manifest] | None = None,
    fingerprints: bool = False,
) -> Manifest:
    """Score the ratings (`source`: a Parquet file or a directory's listed parts) into
    `directory`'s parts, then seal them with the manifest (the publish gates run first).
    `parts` None: one part per RATINGS_PER_PART ratings, at least DEFAULT_PARTS, so a
    task's memory stays the same however many users there are. With `reuse` (a reusable
    earlier run of the same model and partitioning) each actor rescores only its part's
    new or changed users."""
    started = start_ray(options)
    import ray
    import ray.data

    run = stamped(run)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        cpus = int(ray.cluster_resources().get("CPU", 1))
        size = options.concurrency or max(1, int((cpus - 1) // max(options.num_cpus, 1)))
        prepared, count, parts = _prepared_files(source, parts, wanted)
        log.info("%d ratings in %d parts", count, parts)
        if count > parts * RATINGS_PER_PART_WARNING:
            log.warning("more than %d ratings per part: raise --parts", RATINGS_PER_PART_WARNING)
        directory.mkdir(parents=True, exist_ok=True)
        records = (
            prepared.groupby(BUCKET)
            .map_groups(
                PartScorer,
                batch_format="pyarrow",
                fn_constructor_kwargs={
                    "model": str(model.path),
                    "model_data": ray.put(model.data),  # the driver's bytes, read once
                    "device": device,
                    "threads": max(1, int(options.num_cpus)),
                    "job": PartJob(
                        k=run["k"],
                        batch_size=batch_size,
                        directory=directory,
                        metadata=table_metadata(run),
                        source=str(source.path),
                        run_tag=run["run"],
                        fingerprints=fingerprints,
                        previous=reuse[0] if reuse is not None else None,
                        previous_files=listed_files(reuse[1]) if reuse is not None else None,
                    ),
                },
                compute=ray.data.ActorPoolStrategy(size=size),
                num_cpus=options.num_cpus,
                num_gpus=options.num_gpus,
            )
            .take_all()
        )
    except Exception as error:
        cause = _aerec_cause(error)
        if cause is not None:
            raise cause from None
        raise
    finally:
        if started:
            ray.shutdown()
    strays = [directory / TABLE_DIR, directory / USERS_DIR]
    for stray in [path for folder in strays for path in folder.glob(".*.tmp")]:
        stray.unlink()  # left by a worker killed while writing
    if reuse is not None:
        rescored = sum(int(record["rescored_users"]) for record in records)
        run["incremental"] = IncrementalRecord(
            from_run=reuse[1].get("run", reuse[0].name), rescored_users=rescored
        )
        distrusted = sorted(str(r["distrusted"]) for r in records if r["distrusted"])
        if distrusted:
            log.warning(
                "%d parts of %s failed the check against its manifest and were rescored in "
                "full: %s",
                len(distrusted),
                reuse[0],
                ", ".join(distrusted[:5]),
            )
        log.info("incremental run: %d users rescored, the rest reused", rescored)
    if fingerprints or reuse is not None:
        run["fingerprints"] = FingerprintsRecord(
            version=FINGERPRINT_VERSION,
            files=[
                _record(r, "prints_")
                for r in sorted(records, key=lambda r: str(r["prints_file"]))
                if r["prints_file"]
            ],
        )
    return seal_parts(
        directory, _written(records, counts), parts, run, after, previous, min_rows_fraction
    )


def _written(records: list[dict[str, Any]], counts: ReadCounts) -> Written:
    """The parts as the manifest lists them; the read counts added to `counts`."""
    for record in records:
        ints = {f.name: int(record[f.name]) for f in fields(ReadCounts) if f.name != "per_item"}
        per_item = np.asarray(record["per_item"], dtype=np.int64)
        counts.add_counts(ReadCounts(**ints, per_item=per_item))
    parts = sorted((r for r in records if r["file"]), key=lambda r: str(r["file"]))
    return Written(
        rows=sum(int(r["rows"]) for r in parts),
        users=sum(int(r["users"]) for r in parts),
        parts=tuple(_record(r) for r in parts),
    )


def _record(record: dict[str, Any], prefix: str = "") -> PartRecord:
    """A part's (or, with prefix "prints_", its fingerprints') record from an actor's."""
    return PartRecord(
        file=str(record[f"{prefix}file"]),
        rows=int(record[f"{prefix}rows"]),
        users=int(record[f"{prefix}users"]),
        sha256=str(record[f"{prefix}sha256"]),
    )
