"""External id <-> contiguous index maps (saved with the model as items.parquet)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

# index() looks ids up in a table of every id between the smallest and the largest (one
# gather, not a binary search, per value) when the span is at most LOOKUP_SPAN or 4 slots
# an id, and never more than MAX_LOOKUP_SPAN slots (int32: 64 MiB)
LOOKUP_SPAN = 1 << 20
MAX_LOOKUP_SPAN = 1 << 24


@dataclass(frozen=True)
class IdMap:
    """Sorted unique external ids; an id's index is its position."""

    ids: np.ndarray  # int64, strictly increasing

    @classmethod
    def from_ids(cls, values: pl.Series | np.ndarray) -> IdMap:
        array = _int64(values)
        if array.size and bool((array[1:] >= array[:-1]).all()):  # sorted: no sort needed
            return cls(array[np.concatenate(([True], array[1:] != array[:-1]))])
        return cls(np.unique(array))

    @classmethod
    def encode(cls, values: pl.Series | np.ndarray) -> tuple[IdMap, np.ndarray]:
        """The map of the values' ids, and each value's index in it (int64): for values
        in ascending order (a stream read by user), one pass over runs, no lookup."""
        array = _int64(values)
        if array.size and bool((array[1:] >= array[:-1]).all()):
            starts = np.empty(array.size, dtype=bool)
            starts[0] = True
            np.not_equal(array[1:], array[:-1], out=starts[1:])
            index = np.cumsum(starts, dtype=np.int64)
            index -= 1
            return cls(array[starts]), index
        ids, index = np.unique(array, return_inverse=True)
        return cls(ids), index.astype(np.int64, copy=False)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @cached_property
    def _lookup(self) -> np.ndarray | None:
        """Each id's index at (id - smallest id), -1 between ids; None when too sparse."""
        if not len(self):
            return None
        span = int(self.ids[-1] - self.ids[0]) + 1
        if span > min(max(LOOKUP_SPAN, 4 * len(self)), MAX_LOOKUP_SPAN):
            return None
        table = np.full(span, -1, dtype=np.int32)
        table[self.ids - self.ids[0]] = np.arange(len(self), dtype=np.int32)
        return table

    def index(self, values: pl.Series | np.ndarray) -> np.ndarray:
        """Indices of the given external ids; -1 where an id is unknown."""
        array = _int64(values)
        table = self._lookup
        if table is not None and array.size:
            offset = array - self.ids[0]
            if offset.min() >= 0 and offset.max() < len(table):  # every id inside: one gather
                return table[offset].astype(np.int64)
            inside = (offset >= 0) & (offset < len(table))
            return np.where(inside, table[np.where(inside, offset, 0)], -1).astype(np.int64)
        position = np.searchsorted(self.ids, array)
        position = np.minimum(position, len(self) - 1)
        known = self.ids[position] == array
        return np.where(known, position, -1).astype(np.int64)

    def to_frame(self, name: str = "item_id") -> pl.DataFrame:
        return pl.DataFrame({name: self.ids, "index": np.arange(len(self), dtype=np.int64)})

    def save(self, path: Path, name: str = "item_id") -> None:
        self.to_frame(name).write_parquet(path)

    @classmethod
    def load(cls, path: Path, name: str = "item_id") -> IdMap:
        frame = pl.read_parquet(path).sort("index")
        ids = frame[name].to_numpy()
        if np.any(np.diff(ids) <= 0):
            raise ValueError(f"{path}: ids are not strictly increasing")
        return cls(ids.astype(np.int64))


def _int64(values: pl.Series | np.ndarray) -> np.ndarray:
    array = values.to_numpy() if isinstance(values, pl.Series) else np.asarray(values)
    return array.astype(np.int64, copy=False)
