"""The per-batch scoring function: user ids and their ratings in, top-k rows out.

The single-node loop and a distributed engine's workers call the same `score_batch`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from aerec.contracts import GRAPH_INPUTS, RECS_SCHEMA
from aerec.data.csr import CsrMatrix
from aerec.errors import InputError


@dataclass(frozen=True)
class UserBatch:
    """Users and their ratings over the model's items: user_ids[i]'s ratings are row
    rows[i] of `ratings` (rows None: row i), so a batch of a chunk's users copies none."""

    user_ids: np.ndarray  # int64 [n]
    ratings: CsrMatrix
    rows: np.ndarray | None = None


# One batch of users -> (scores, items), each [n, k]
Scorer = Callable[[UserBatch], tuple[np.ndarray, np.ndarray]]


def graph_feed(batch: UserBatch) -> dict[str, np.ndarray]:
    """The scoring graph's inputs for a batch (aerec.contracts.GRAPH_INPUTS): each user's
    columns and ratings, padded to the widest user with their first column and 0.

    Every user of a batch has at least one rating."""
    columns, values = batch.ratings.padded(batch.rows)
    return dict(zip(GRAPH_INPUTS, (columns, values), strict=True))


_MODEL_SOURCE = pl.Series("source", ["model"], dtype=pl.String)


def topk_rows(
    user_ids: np.ndarray, scores: np.ndarray, items: np.ndarray, k: int | None = None
) -> pl.DataFrame:
    """recs.parquet rows of one batch of the graph's top-k output, sorted by user then rank.

    Slots the graph filled with -inf (already-rated items, when a user has rated almost
    everything) are dropped, so no row ever holds an item the user rated. `k` keeps only
    the first k ranks.
    """
    if k is not None:
        scores, items = scores[:, :k], items[:, :k]
    width = scores.shape[1]
    keep = np.isfinite(scores).ravel()
    return pl.DataFrame(
        {
            "user_id": np.repeat(np.asarray(user_ids, dtype=np.int64), width)[keep],
            "rank": np.tile(np.arange(1, width + 1, dtype=np.int32), len(user_ids))[keep],
            "item_id": items.ravel()[keep],
            "score": scores.ravel()[keep],
            "source": _MODEL_SOURCE.new_from_index(0, int(keep.sum())),
        },
        schema=RECS_SCHEMA,
    )


def score_batch(scorer: Scorer, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
    """Score one batch of users: the graph's (scores, items), each [n, k], checked."""
    scores, items = scorer(batch)
    # -inf marks rated items (masked in the graph); NaN or +inf means a broken model
    broken = (np.isnan(scores) | np.isposinf(scores)).any(axis=1)
    if broken.any():
        raise InputError(
            f"the model scored NaN or +inf for {int(broken.sum())} users of a batch (first: "
            f"user {int(batch.user_ids[broken][0])}); nothing published"
        )
    return scores, items
