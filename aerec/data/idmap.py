"""External id <-> contiguous index maps (saved with the model as items.parquet)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl


@dataclass(frozen=True)
class IdMap:
    """Sorted unique external ids; an id's index is its position."""

    ids: np.ndarray  # int64, strictly increasing

    @classmethod
    def from_ids(cls, values: pl.Series | np.ndarray) -> IdMap:
        array = values.to_numpy() if isinstance(values, pl.Series) else np.asarray(values)
        return cls(np.unique(array.astype(np.int64, copy=False)))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def index(self, values: pl.Series | np.ndarray) -> np.ndarray:
        """Indices of the given external ids; -1 where an id is unknown."""
        array = values.to_numpy() if isinstance(values, pl.Series) else np.asarray(values)
        array = array.astype(np.int64, copy=False)
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
