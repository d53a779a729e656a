"""Scoring users in batches through one ONNX Runtime session."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import polars as pl

from aerec.contracts import GRAPH_INPUT, GRAPH_OUTPUTS, Progress
from aerec.data.csr import CsrMatrix
from aerec.score.batch import UserBatch, score_batch
from aerec.score.session import open_session
from aerec.score.vectors import UserVectors


class BatchScorer:
    """Loads the session once; each call scores one batch of rating rows.

    The rows are densified into one buffer reused across calls (grown when a larger
    batch arrives).
    """

    def __init__(self, model: str | Path, device: str = "auto", threads: int = 0) -> None:
        self.session, self.info, self.provider = open_session(model, device, threads)
        self._buffer = np.zeros((0, len(self.info.items)), dtype=np.float32)

    def __call__(self, ratings: CsrMatrix) -> tuple[np.ndarray, np.ndarray]:
        if ratings.n_rows > self._buffer.shape[0]:
            self._buffer = np.zeros((ratings.n_rows, ratings.n_cols), dtype=np.float32)
        dense = ratings.densify(np.arange(ratings.n_rows), self._buffer)
        scores, items = self.session.run(list(GRAPH_OUTPUTS), {GRAPH_INPUT: dense})
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
