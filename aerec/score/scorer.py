"""Scoring users in batches through one ONNX Runtime session."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import polars as pl

from aerec.contracts import GRAPH_OUTPUTS, Progress
from aerec.score.batch import UserBatch, graph_feed, score_batch
from aerec.score.session import open_session
from aerec.score.vectors import UserVectors


class BatchScorer:
    """Loads the session once; each call scores one batch of users from their entries."""

    def __init__(self, model: str | Path, device: str = "auto", threads: int = 0) -> None:
        self.session, self.info, self.provider = open_session(model, device, threads)

    def __call__(self, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
        scores, items = self.session.run(list(GRAPH_OUTPUTS), graph_feed(batch))
        return scores, items


def user_batches(vectors: UserVectors, batch_size: int) -> Iterator[UserBatch]:
    """Consecutive batches of at most batch_size users, in user id order."""
    for start in range(0, vectors.ratings.n_rows, batch_size):
        stop = min(start + batch_size, vectors.ratings.n_rows)
        yield UserBatch(vectors.users.ids[start:stop], vectors.ratings.row_slice(start, stop))


def score_users(
    scorer: BatchScorer,
    vectors: UserVectors,
    batch_size: int = 512,
    k: int | None = None,
    progress: Progress | None = None,
) -> Iterator[pl.DataFrame]:
    """Top-k rows for every user in `vectors`, one frame per batch, in user id order."""
    batches: Iterable[UserBatch] = user_batches(vectors, batch_size)
    if progress is not None:
        batches = progress(batches, "scoring", -(-vectors.ratings.n_rows // batch_size))
    for batch in batches:
        yield score_batch(scorer, batch, k)
