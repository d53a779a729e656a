"""Scoring users in batches through one ONNX Runtime session."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import polars as pl

from aerec.score.session import open_session
from aerec.score.vectors import UserVectors

Progress = Callable[[Iterable[np.ndarray], str, int], Iterable[np.ndarray]]

RECS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "rank": pl.Int32(),
    "item_id": pl.Int64(),
    "score": pl.Float32(),
}


class BatchScorer:
    """Loads the session once; each call scores one dense batch of rating vectors."""

    def __init__(self, model: str | Path, device: str = "auto", threads: int = 0) -> None:
        self.session, self.info, self.provider = open_session(model, device, threads)

    def __call__(self, ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, items = self.session.run(["scores", "items"], {"ratings": ratings})
        return scores, items


def score_users(
    scorer: BatchScorer,
    vectors: UserVectors,
    batch_size: int = 512,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """Top-k rows for every user in `vectors`, sorted by user_id then rank.

    Slots the graph filled with -inf (already-rated items, when a user has rated almost
    everything) are dropped, so no row ever holds an item the user rated.
    """
    matrix = vectors.ratings
    buffer = np.zeros((batch_size, matrix.n_cols), dtype=np.float32)
    blocks: Iterable[np.ndarray] = (
        np.arange(start, min(start + batch_size, matrix.n_rows))
        for start in range(0, matrix.n_rows, batch_size)
    )
    if progress is not None:
        blocks = progress(blocks, "scoring", -(-matrix.n_rows // batch_size))
    users, ranks, items, scores = [], [], [], []
    for rows in blocks:
        block_scores, block_items = scorer(matrix.densify(rows, buffer))
        keep = np.isfinite(block_scores)
        k = block_scores.shape[1]
        users.append(np.repeat(vectors.users.ids[rows], k)[keep.ravel()])
        ranks.append(np.tile(np.arange(1, k + 1, dtype=np.int32), len(rows))[keep.ravel()])
        items.append(block_items[keep])
        scores.append(block_scores[keep])
    if not users:
        return pl.DataFrame(schema=RECS_SCHEMA)
    return pl.DataFrame(
        {
            "user_id": np.concatenate(users),
            "rank": np.concatenate(ranks),
            "item_id": np.concatenate(items),
            "score": np.concatenate(scores),
        },
        schema=RECS_SCHEMA,
    )
