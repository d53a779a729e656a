"""What a recs table's health figures are computed from, tallied as its rows are written
(no second pass over the file) in memory bounded by the catalogue and the sample.

Two parts: each item's exposure in the lists the model ranked (source model: the
popularity fallback gives every cold user the same list by design, so it is not counted
there), and a sample of whole users' lists of every source: the `sample_users` users
with the smallest splitmix64 hash of their id. The sample is the same set of users
whatever order rows arrive in and however they are split into parts, so tallies merge
exactly (Ray parts, an incremental run's merged parts) and two runs' samples hold the
same users where both tables do. It holds every user of a table with fewer users than
`sample_users`: then every figure is exact.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from aerec.contracts import HEALTH_SAMPLE_SCHEMA, HEALTH_SAMPLE_USERS, mix64

_COMPACT_ROWS = 1_000_000  # exposure ids held before they are counted


@dataclass
class Tally:
    """Exposure counts and the user sample of the rows seen so far."""

    sample_users: int = HEALTH_SAMPLE_USERS
    rows: int = 0  # rows the model ranked
    users: int = 0  # users whose list the model ranked
    _items: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    _counts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    _pending: list[np.ndarray] = field(default_factory=list)
    _pending_rows: int = 0
    _sample: list[pl.DataFrame] = field(default_factory=list)
    _sample_rows: int = 0
    _kept_rows: int = 0  # rows of the sample at its last compaction
    _threshold: int = 2**64 - 1  # users hashed above it are not in the sample

    def observe(self, rows: pl.DataFrame) -> None:
        """Count a frame of recs rows (RECS_SCHEMA; a user's rows all in one frame)."""
        if rows.height == 0:
            return
        ranked = rows.filter(pl.col("source") == "model")
        self.rows += ranked.height
        self.users += ranked["user_id"].n_unique()
        self._pending.append(ranked["item_id"].to_numpy())
        self._pending_rows += ranked.height
        if self._pending_rows >= _COMPACT_ROWS:
            self._count_pending()
        hashes = pl.Series("user_hash", mix64(rows["user_id"].to_numpy()), dtype=pl.UInt64)
        sampled = rows.with_columns(hashes).filter(pl.col("user_hash") <= self._threshold)
        self._add_sample(sampled.select(list(HEALTH_SAMPLE_SCHEMA)))

    def merge(self, other: Tally) -> None:
        """Add another tally's rows (of other users) to this one."""
        self.rows += other.rows
        self.users += other.users
        self._add_counts(other.exposure())
        self._add_sample(other.sample())

    def exposure(self) -> tuple[np.ndarray, np.ndarray]:
        """The items in at least one list, sorted, and how many rows hold each."""
        self._count_pending()
        return self._items, self._counts

    def sample(self) -> pl.DataFrame:
        """The sampled users' rows (HEALTH_SAMPLE_SCHEMA), by user hash, user and rank."""
        self._compact_sample()
        if not self._sample:
            return pl.DataFrame(schema=HEALTH_SAMPLE_SCHEMA)
        return self._sample[0]

    def sample_is_complete(self) -> bool:
        """Whether the sample holds every user seen (fewer than sample_users were)."""
        self._compact_sample()
        return self._threshold == 2**64 - 1

    def to_bytes(self) -> tuple[bytes, bytes, int]:
        """The exposure and the sample as Arrow IPC streams, and the users the model
        ranked (a Ray actor's record)."""
        items, counts = self.exposure()
        exposure = pl.DataFrame({"item_id": items, "count": counts})
        return _ipc(exposure), _ipc(self.sample()), self.users

    @classmethod
    def from_bytes(
        cls, exposure: bytes, sample: bytes, users: int, sample_users: int = HEALTH_SAMPLE_USERS
    ) -> Tally:
        tally = cls(sample_users)
        counted = pl.read_ipc(io.BytesIO(exposure))
        tally._add_counts((counted["item_id"].to_numpy(), counted["count"].to_numpy()))
        tally._add_sample(pl.read_ipc(io.BytesIO(sample)))
        tally.rows, tally.users = int(counted["count"].sum()), users
        return tally

    def _count_pending(self) -> None:
        if self._pending:
            items = np.concatenate(self._pending)
            self._pending, self._pending_rows = [], 0
            self._add_counts((items, np.ones(len(items), np.int64)))

    def _add_counts(self, counted: tuple[np.ndarray, np.ndarray]) -> None:
        items = np.concatenate([self._items, counted[0].astype(np.int64)])
        weights = np.concatenate([self._counts, counted[1].astype(np.int64)])
        self._items, inverse = np.unique(items, return_inverse=True)
        self._counts = np.bincount(inverse, weights=weights, minlength=len(self._items)).astype(
            np.int64
        )

    def _add_sample(self, rows: pl.DataFrame) -> None:
        if rows.height:
            self._sample.append(rows)
            self._sample_rows += rows.height
            if self._sample_rows > 2 * self._kept_rows + 100_000:
                self._compact_sample()

    def _compact_sample(self) -> None:
        """Keep the sample_users users of smallest hash; later rows above it are dropped."""
        if len(self._sample) == 0:
            return
        rows = pl.concat(self._sample)
        hashes = rows["user_hash"].unique().sort()
        if len(hashes) > self.sample_users:
            self._threshold = int(hashes[self.sample_users - 1])
            rows = rows.filter(pl.col("user_hash") <= self._threshold)
        rows = rows.sort("user_hash", "user_id", "rank")
        self._sample, self._sample_rows, self._kept_rows = [rows], rows.height, rows.height


def _ipc(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    return buffer.getvalue()
