"""score-all as a function: read ratings, build vectors, score, publish."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import polars as pl

from aerec.contracts import InputRecord, Manifest, Progress
from aerec.data.idmap import IdMap
from aerec.data.readers import read_ratings
from aerec.errors import InputError, file_error
from aerec.score.publish import file_sha256, publish_recs
from aerec.score.scorer import BatchScorer, score_users
from aerec.score.vectors import UserVectors, build_user_vectors

log = logging.getLogger(__name__)


def read_user_ids(path: str | Path) -> pl.Series:
    """User ids from a file of one id per line (a header line is allowed)."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "no such file")
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if lines and not lines[0].lstrip("-").isdigit():
        lines = lines[1:]
    for number, line in enumerate(lines, start=2 if len(lines) else 1):
        if not line.lstrip("-").isdigit():
            raise file_error(path, f"not a user id: {line!r}", number)
    if not lines:
        raise file_error(path, "lists no users")
    return pl.Series("user_id", [int(line) for line in lines], dtype=pl.Int64)


def load_user_vectors(
    ratings: str | Path, items: IdMap, users: str | Path | None = None
) -> UserVectors:
    """The users' vectors over the model's items; the ratings frame is freed on return."""
    frame = read_ratings(ratings)
    if users is not None:
        frame = frame.filter(pl.col("user_id").is_in(read_user_ids(users).implode()))
    return build_user_vectors(frame, items)


def score_all(
    model: str | Path,
    ratings: str | Path,
    out: str | Path,
    k: int | None = None,
    batch_size: int = 512,
    device: str = "auto",
    users: str | Path | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Score every user (or those listed in `users`) and publish the top-k table."""
    started = time.perf_counter()
    scorer = BatchScorer(model, device)
    info = scorer.info
    if k is not None and k > info.k:
        raise InputError(f"--k {k}: the model computes only its top {info.k}; re-export with --k")
    vectors = load_user_vectors(ratings, info.items, users)
    if vectors.users.ids.size == 0:
        raise file_error(ratings, "no user has a rating of an item the model knows")
    run = Manifest(
        k=k or info.k,
        model_version=info.version,
        input=InputRecord(path=str(ratings), sha256=file_sha256(ratings)),
        provider=scorer.provider,
        users_skipped=vectors.users_without_known_items,
        unknown_item_ratings=vectors.unknown_item_ratings,
    )
    manifest = publish_recs(score_users(scorer, vectors, batch_size, k, progress), out, run)
    seconds = time.perf_counter() - started
    log.info(
        "scored %d users in %.1f s (%.0f users/s) on %s",
        len(vectors.users),
        seconds,
        len(vectors.users) / seconds,
        scorer.provider,
    )
    return manifest
