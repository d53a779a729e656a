"""A minimal CSR user x item matrix and per-batch densification (no whole-data dense matrix)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from aerec.data.idmap import IdMap


def batches(rows: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of `rows` of at most `size` entries."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@dataclass(frozen=True)
class CsrMatrix:
    """Rows are users, columns items; data holds the ratings."""

    indptr: np.ndarray  # int64 [n_rows + 1]
    indices: np.ndarray  # int32 [nnz], sorted within each row
    data: np.ndarray  # float32 [nnz]
    n_cols: int

    @property
    def n_rows(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    def row_counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    @classmethod
    def from_indices(
        cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, n_cols: int
    ) -> CsrMatrix:
        """Build from coordinate arrays; a (row, col) given twice is stored twice, in the
        order given (see has_duplicates)."""
        keys = rows.astype(np.int64)  # a copy, then worked in place
        keys *= n_cols
        keys += cols
        # Input read by user and item is in order already: skip the sort then.
        ordered = keys.size < 2 or bool(np.all(keys[1:] >= keys[:-1]))
        if not ordered:
            order = np.argsort(keys, kind="stable")
            cols, values = cols[order], values[order]
        counts = np.bincount(rows, minlength=n_rows)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(
            indptr=indptr,
            indices=cols.astype(np.int32, copy=False),
            data=values.astype(np.float32, copy=False),
            n_cols=n_cols,
        )

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, users: IdMap, items: IdMap) -> CsrMatrix:
        """Build from canonical ratings whose users and items are all in the maps."""
        rows = users.index(frame["user_id"])
        cols = items.index(frame["item_id"])
        if (rows < 0).any() or (cols < 0).any():
            raise ValueError("ratings hold ids missing from the id maps")
        return cls.from_indices(rows, cols, frame["rating"].to_numpy(), len(users), len(items))

    def has_duplicates(self) -> bool:
        """Whether some row stores one column twice."""
        repeated = np.flatnonzero(self.indices[1:] == self.indices[:-1]) + 1
        starts = self.indptr[1:-1]
        return bool(np.setdiff1d(repeated, starts, assume_unique=True).size)

    def take(self, rows: np.ndarray) -> CsrMatrix:
        """The given rows, in the given order, as a matrix of their own."""
        counts = self.row_counts()[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        starts = self.indptr[rows]
        positions = np.arange(int(indptr[-1])) + np.repeat(starts - indptr[:-1], counts)
        return CsrMatrix(indptr, self.indices[positions], self.data[positions], self.n_cols)

    def densify(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Dense [len(rows), n_cols] float32 block of the given rows, written into `out`."""
        if out is None:
            out = np.zeros((len(rows), self.n_cols), dtype=np.float32)
        else:
            out = out[: len(rows)]
            out.fill(0.0)
        starts, stops = self.indptr[rows], self.indptr[rows + 1]
        lengths = stops - starts
        total = int(lengths.sum())
        if total:
            offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
            positions = np.arange(total, dtype=np.int64) + offsets
            row_of = np.repeat(np.arange(len(rows)), lengths)
            out[row_of, self.indices[positions]] = self.data[positions]
        return out

    def padded(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The given rows' (default: every row's) columns (int64) and values (float32),
        [len(rows), widest of them], padded with the row's first column and value 0 (an
        empty row: column 0). One gather from the stored entries, no copy of the rows."""
        starts = self.indptr[:-1] if rows is None else self.indptr[rows]
        counts = (self.indptr[1:] if rows is None else self.indptr[rows + 1]) - starts
        width = max(int(counts.max(initial=0)), 1)
        if self.nnz == 0:
            return np.zeros((len(counts), width), np.int64), np.zeros(
                (len(counts), width), np.float32
            )
        step = np.arange(width)
        inside = step < counts[:, None]
        positions = step * inside  # a padding slot reads the row's first entry
        positions += starts[:, None]
        empty = counts == 0
        if empty.any():  # its "first entry" may lie past the last one
            np.minimum(positions, self.nnz - 1, out=positions)
        columns = self.indices[positions].astype(np.int64)
        columns[empty] = 0
        values = self.data[positions]
        values *= inside
        return columns, values

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """The row and the column of every stored entry, in storage order."""
        return np.repeat(np.arange(self.n_rows), self.row_counts()), self.indices

    def holds(self, columns: np.ndarray) -> np.ndarray:
        """Boolean [n_rows, m]: whether row i stores column columns[i, j] (an entry of any
        value), without a dense [n_rows, n_cols] block."""
        rows, stored = self.coordinates()
        keys = rows.astype(np.int64) * self.n_cols + stored  # sorted: rows, then columns
        asked = np.arange(self.n_rows, dtype=np.int64)[:, None] * self.n_cols + columns
        found = np.searchsorted(keys, asked)
        if keys.size == 0:
            return np.zeros(asked.shape, dtype=bool)
        return keys[np.minimum(found, keys.size - 1)] == asked

    def transpose(self) -> CsrMatrix:
        """The same entries with rows and columns swapped (items x users)."""
        rows, columns = self.coordinates()
        return CsrMatrix.from_indices(
            columns.astype(np.int64), rows, self.data, self.n_cols, self.n_rows
        )

    def select(self, keep: np.ndarray) -> CsrMatrix:
        """The entries where the boolean mask over `data` is true, same shape."""
        rows = self.coordinates()[0][keep]
        return CsrMatrix.from_indices(
            rows, self.indices[keep], self.data[keep], self.n_rows, self.n_cols
        )

    def column_counts(self) -> np.ndarray:
        return np.bincount(self.indices, minlength=self.n_cols)
