"""Users' rating vectors over the model's item table, as CSR rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import polars as pl

from aerec.data.csr import CsrMatrix
from aerec.data.idmap import IdMap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserVectors:
    users: IdMap  # the users with at least one known rating, in id order
    ratings: CsrMatrix  # one row per user, columns in the model's item order
    unknown_item_ratings: int  # ratings of items the model does not know (dropped)
    users_without_known_items: int  # users all of whose ratings were dropped


def build_user_vectors(frame: pl.DataFrame, items: IdMap) -> UserVectors:
    """Map item ids through the model's table; drop (and count) ratings of unknown items."""
    columns = items.index(frame["item_id"])
    known = columns >= 0
    all_users = frame["user_id"].n_unique()
    kept = frame.filter(pl.Series(known))
    users = IdMap.from_ids(kept["user_id"])
    rows = users.index(kept["user_id"])
    matrix = CsrMatrix.from_indices(
        rows, columns[known], kept["rating"].to_numpy(), len(users), len(items)
    )
    vectors = UserVectors(users, matrix, int((~known).sum()), all_users - len(users))
    if vectors.unknown_item_ratings:
        log.warning(
            "dropped %d ratings of items the model does not know", vectors.unknown_item_ratings
        )
    if vectors.users_without_known_items:
        log.warning(
            "%d users have no rating of a known item and get no rows",
            vectors.users_without_known_items,
        )
    return vectors
