"""Scoring users in batches through one ONNX Runtime session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from aerec.contracts import GRAPH_OUTPUTS
from aerec.score.batch import UserBatch, graph_feed, score_batch
from aerec.score.session import open_session
from aerec.score.vectors import UserVectors, user_batches


class BatchScorer:
    """Loads the session once; each call scores one batch of users from their entries."""

    def __init__(self, model: str | Path, device: str = "auto", threads: int = 0) -> None:
        self.session, self.info, self.provider = open_session(model, device, threads)

    def __call__(self, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
        scores, items = self.session.run(list(GRAPH_OUTPUTS), graph_feed(batch))
        return scores, items


def score_users(
    scorer: BatchScorer,
    vectors: UserVectors,
    batch_size: int = 512,
    k: int | None = None,
) -> Iterator[pl.DataFrame]:
    """Top-k rows for every user in `vectors`, one frame per batch, in user id order."""
    for batch in user_batches(vectors, batch_size):
        yield score_batch(scorer, batch, k)
