"""Users' rating vectors over the model's item table, as CSR rows, and a stream of them."""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from aerec.contracts import MIN_POPULARITY_AGREEMENT
from aerec.data.csr import CsrMatrix
from aerec.data.idmap import IdMap
from aerec.data.readers import read_rating_chunks
from aerec.data.stats import check_popularity
from aerec.data.stream import CHUNK_ROWS, complete_users, sort_on_disk
from aerec.data.validate import drop_duplicate_pairs
from aerec.errors import GateRefused

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserVectors:
    users: IdMap  # the users with at least one known rating, in id order
    ratings: CsrMatrix  # one row per user, columns in the model's item order
    unknown_item_ratings: int  # ratings of items the model does not know (dropped)
    users_without_known_items: int  # users all of whose ratings were dropped
    cold_users: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # their ids


@dataclass
class ReadCounts:
    """What a stream of users held, added up as it passes."""

    users: int = 0  # users with at least one rating of a known item
    ratings: int = 0  # every rating read, known item or not
    unknown_item_ratings: int = 0
    users_without_known_items: int = 0
    users_without_candidates: int = 0  # users who rated every item the model knows
    per_item: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # by column
    # the ids of every user read (known items or not): kept only for a --users list
    seen_users: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def add(self, vectors: UserVectors, listed: bool = False) -> None:
        self.add_counts(ReadCounts.of(vectors, listed))

    def add_counts(self, other: ReadCounts) -> None:
        self.users += other.users
        self.ratings += other.ratings
        self.unknown_item_ratings += other.unknown_item_ratings
        self.users_without_known_items += other.users_without_known_items
        self.users_without_candidates += other.users_without_candidates
        if len(self.per_item) < len(other.per_item):
            self.per_item = np.pad(self.per_item, (0, len(other.per_item) - len(self.per_item)))
        self.per_item[: len(other.per_item)] += other.per_item
        if len(other.seen_users):
            self.seen_users = np.concatenate([self.seen_users, other.seen_users])

    @staticmethod
    def of(vectors: UserVectors, listed: bool = False) -> ReadCounts:
        """The counts of `vectors`; `listed` (a --users run) keeps their users' ids."""
        seen = np.concatenate([vectors.users.ids, vectors.cold_users]) if listed else None
        return ReadCounts(
            seen_users=np.zeros(0, np.int64) if seen is None else seen.astype(np.int64),
            users=len(vectors.users),
            ratings=vectors.ratings.nnz + vectors.unknown_item_ratings,
            unknown_item_ratings=vectors.unknown_item_ratings,
            users_without_known_items=vectors.users_without_known_items,
            users_without_candidates=int(
                (np.diff(vectors.ratings.indptr) >= vectors.ratings.n_cols).sum()
            ),
            per_item=np.bincount(vectors.ratings.indices, minlength=vectors.ratings.n_cols),
        )

    def check_fit(
        self,
        source: object,
        max_unknown: float,
        model_counts: np.ndarray | None = None,
        min_agreement: float = MIN_POPULARITY_AGREEMENT,
    ) -> None:
        """Refuse data the model does not fit: too many ratings of unknown items, too many
        users without a known item, or (when the model records its training data's item
        counts) an item popularity that does not rank like the model's: ids of another
        data set overlap numerically, so known ids alone do not say the data fit."""
        unknown = self.unknown_item_ratings / max(self.ratings, 1)
        users = self.users + self.users_without_known_items
        lost = self.users_without_known_items / max(users, 1)
        if unknown > max_unknown or lost > max_unknown:
            raise GateRefused(
                "max_unknown",
                f"{source}: the model does not fit these ratings: {unknown:.0%} of ratings are "
                f"of items it does not know and {lost:.0%} of users have no known item "
                f"(limit {max_unknown:.0%}, --max-unknown); nothing published",
            )
        if model_counts is not None and len(self.per_item) == len(model_counts):
            check_popularity(source, model_counts, self.per_item, min_agreement)

    def warn(self, fallback: bool) -> None:
        if self.unknown_item_ratings:
            log.warning(
                "dropped %d ratings of items the model does not know", self.unknown_item_ratings
            )
        if self.users_without_known_items:
            log.warning(
                "%d users have no rating of a known item: %s",
                self.users_without_known_items,
                "they get the popularity fallback" if fallback else "they get no rows",
            )


def build_user_vectors(
    frame: pl.DataFrame, items: IdMap, source: object = "ratings"
) -> UserVectors:
    """Every rating of the frame's users, mapped through the model's item table.

    Ratings of unknown items are dropped (and counted); a (user, item) pair rated twice
    keeps its latest rating, as read_ratings does.
    """
    columns = items.index(frame["item_id"])
    known = columns >= 0
    kept = frame.filter(pl.Series(known)) if not known.all() else frame
    users, rows = IdMap.encode(kept["user_id"])
    cold = np.empty(0, np.int64)
    if not known.all():
        every = frame["user_id"].unique().to_numpy().astype(np.int64)
        cold = np.setdiff1d(every, users.ids)
    matrix = CsrMatrix.from_indices(
        rows,
        columns[known],
        kept["rating"].to_numpy(),
        len(users),
        len(items),
    )
    if matrix.has_duplicates():
        return build_user_vectors(drop_duplicate_pairs(Path(str(source)), frame), items, source)
    return UserVectors(users, matrix, int((~known).sum()), len(cold), cold)


def _vectors_of(
    frames: Iterable[pl.DataFrame],
    items: IdMap,
    counts: ReadCounts,
    wanted: pl.Series | None,
    source: object,
) -> Generator[UserVectors, None, None]:
    for frame in complete_users(frames):
        if wanted is not None:
            frame = frame.filter(pl.col("user_id").is_in(wanted.implode()))
            if frame.height == 0:
                continue
        vectors = build_user_vectors(frame, items, source)
        counts.add(vectors, listed=wanted is not None)
        if len(vectors.users) or len(vectors.cold_users):
            yield vectors


def stream_user_vectors(
    ratings: str | Path,
    items: IdMap,
    counts: ReadCounts,
    wanted: pl.Series | None = None,
    sort: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> Generator[UserVectors, None, None]:
    """The vectors of whole users, a chunk at a time, read from the file in ascending user
    order: memory is bounded by the chunk. `sort` goes through an on-disk sort first
    (needed when the file is not sorted by user: reading it unsorted raises
    NotSortedByUser)."""
    chunks = sort_on_disk(ratings, chunk_rows) if sort else read_rating_chunks(ratings, chunk_rows)
    return _vectors_of(chunks, items, counts, wanted, ratings)
