"""The popularity fallback: a user none of whose ratings is of an item the model knows (a
new user, or one who rated only new films) gets the model's training data's most rated
items instead of no list, marked `source` "popularity" in the table. The counts come from
the model's own metadata (MODEL_ITEM_COUNTS), so the fallback is the model's, not the
ratings'. The user's rated items are all unknown to the model, so none of them is among
these."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from aerec.contracts import RECS_SCHEMA
from aerec.score.session import ModelInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Popularity:
    """The top-k items by training count (ties in item-table order), and those counts."""

    items: np.ndarray  # int64 item ids, most rated first
    counts: np.ndarray  # their training counts

    @staticmethod
    def of(info: ModelInfo, k: int) -> Popularity | None:
        """The model's fallback list of k items; None (with a warning) for a model that
        records no training counts (exported by an older aerec)."""
        if info.item_counts is None:
            log.warning(
                "the model records no training counts (exported by an older aerec): users "
                "without a known item get no rows; re-export it for the popularity fallback"
            )
            return None
        order = np.argsort(-info.item_counts, kind="stable")
        order = order[info.item_counts[order] > 0][:k]
        return Popularity(info.items.ids[order], info.item_counts[order])

    def rows(self, users: np.ndarray) -> pl.DataFrame:
        """Each user's fallback rows, sorted by user and rank."""
        users = np.sort(np.asarray(users, dtype=np.int64))
        k = len(self.items)
        return pl.DataFrame(
            {
                "user_id": np.repeat(users, k),
                "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(users)),
                "item_id": np.tile(self.items, len(users)),
                "score": np.tile(self.counts.astype(np.float32), len(users)),
                "source": pl.repeat("popularity", k * len(users), dtype=pl.String, eager=True),
            },
            schema=RECS_SCHEMA,
        )
