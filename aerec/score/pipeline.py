"""score-all as a function: plan the request, let the engine score it into the sink,
publish."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from aerec.contracts import Manifest, Progress, run_stamp
from aerec.errors import InputError, file_error
from aerec.io.digest import InputFiles
from aerec.io.outputs import model_inputs
from aerec.io.sinks import RecsSink
from aerec.logs import set_run
from aerec.score.fallback import Popularity
from aerec.score.incremental import reusable_manifest
from aerec.score.job import Engine, Reuse, ScoreJob, ScoreRequest, stamped
from aerec.score.memory import keep_large_buffers_out_of_the_heap
from aerec.score.publish import publish
from aerec.score.session import ModelFile, describe_model

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
    request: ScoreRequest, sink: RecsSink, engine: Engine, progress: Progress | None = None
) -> Manifest:
    """Score every user of the request (or those it lists) with `engine` into `sink`, and
    publish the table (aerec.score.publish: the gates, the manifest, the seal).

    Where the run writes and what it reads are checked before any work; memory is bounded
    by the engine's chunk, the batch and the model. The ratings' checksum is computed in
    a thread beside the scoring. On any failure what the sink wrote is removed and the
    published table stays as it was.
    """
    started = time.perf_counter()
    job = plan(request, sink, engine, progress)
    hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aerec-sha256")
    digest = hashing.submit(job.source.sha256)
    try:
        scored = engine.score(job, sink)
        manifest = publish(job, sink, scored, digest.result)
    except BaseException:
        sink.abort()
        raise
    finally:
        hashing.shutdown(wait=True, cancel_futures=True)
    seconds = time.perf_counter() - started
    rescored = manifest.get("incremental", {}).get("rescored_users")
    log.info(
        "read %d users in %.1f s (%.0f users/s)%s on %s",
        scored.counts.users,
        seconds,
        scored.counts.users / seconds,
        "" if rescored is None else f", {rescored} of them rescored, the rest reused,",
        scored.provider,
    )
    return manifest


def plan(
    request: ScoreRequest, sink: RecsSink, engine: Engine, progress: Progress | None = None
) -> ScoreJob:
    """Check the request against the engine and the sink, read the model once, and fix
    the run's identity: a missing input or a refused output is said before any work."""
    if request.batch_size is not None and request.batch_size < 1:
        raise InputError(f"--batch-size {request.batch_size}: must be at least 1")
    source = InputFiles.of(request.ratings)  # once: what is read is exactly what is hashed
    engine.check(source, sink)
    replaced = sink.check([request.ratings, *model_inputs(request.model)])
    if (request.incremental_from or request.fingerprints) and sink.parts is None:
        raise InputError("incremental runs and fingerprints need a partitioned table (--parts)")
    keep_large_buffers_out_of_the_heap()
    model = ModelFile.read(request.model)  # once: every session of this run scores these bytes
    info = describe_model(model)
    k = info.rows_per_user(request.k)
    wanted = read_user_ids(request.users) if request.users is not None else None
    run = Manifest(k=k, model_version=info.version, score=info.score)
    if request.run_name is not None or sink.parts is not None:
        run["run"] = request.run_name or run_stamp()  # a partitioned table's files carry it
    run = stamped(run)
    set_run(run.get("run", run["generated_at"]))
    return ScoreJob(
        request=request,
        model=model,
        info=info,
        source=source,
        run=run,
        wanted=wanted,
        reuse=_reusable(request, info.version, k, sink.parts),
        replaces=request.replaces or replaced,
        fallback=Popularity.of(info, k) if request.fallback else None,
        progress=progress,
    )


def _reusable(request: ScoreRequest, version: str, k: int, parts: int | None) -> Reuse | None:
    """The earlier run this one may reuse (same model, k and partitioning), if any."""
    if request.incremental_from is None or parts is None:
        return None
    directory = Path(request.incremental_from)
    manifest = reusable_manifest(directory, version, k, parts)
    return None if manifest is None else Reuse(directory, manifest)
