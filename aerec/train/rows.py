"""A training batch in the sparse form the scoring graph reads."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from aerec.data.csr import CsrMatrix

log = logging.getLogger(__name__)

# the training rows stay on a GPU when they take at most this share of its free memory
DEVICE_ROWS_SHARE = 0.25


@dataclass(frozen=True)
class RatedRows:
    """A training batch as each row's rated columns and values, [batch, width], padded
    with value 0: the form the scoring graph reads. No [batch, n_cols] work is done on
    the rows until a network's first layer needs it."""

    columns: torch.Tensor  # int64
    values: torch.Tensor  # float32
    n_cols: int

    @classmethod
    def of_dense(cls, dense: torch.Tensor) -> RatedRows:
        """Every column of dense rows (a network's own output, fed back in)."""
        columns = torch.arange(dense.shape[1], device=dense.device).expand_as(dense)
        return cls(columns.contiguous(), dense, dense.shape[1])

    def dense(self, values: torch.Tensor | None = None) -> torch.Tensor:
        """[batch, n_cols] rows holding `values` (default: the ratings) at the columns."""
        values = self.values if values is None else values
        out = torch.zeros(values.shape[0], self.n_cols, dtype=values.dtype, device=values.device)
        return out.scatter_add_(1, self.columns, values)

    def at(self, output: torch.Tensor) -> torch.Tensor:
        """A network's [batch, n_cols] output at the rated columns, [batch, width]."""
        return output.gather(1, self.columns)


class TrainingRows:
    """The rows a network trains on, held where batches are cut from them: on the
    training device when they fit (moved there once, DEVICE_ROWS_SHARE of a GPU's free
    memory), else in host memory, each batch then copied over. A batch's padded rows are
    gathered where the rows lie, as CsrMatrix.padded does in numpy."""

    def __init__(self, matrix: CsrMatrix, device: str) -> None:
        self.device, self.n_cols = torch.device(device), matrix.n_cols
        arrays = [matrix.indptr, matrix.indices.astype(np.int64), matrix.data]
        arrays = [a if a.flags.writeable else a.copy() for a in arrays]  # torch shares them
        held = self.device if _fits(sum(a.nbytes for a in arrays), self.device) else "cpu"
        self.indptr, self.indices, self.data = (torch.from_numpy(a).to(held) for a in arrays)
        self.resident = self.indptr.device == self.device
        if self.device.type == "cuda":
            where = "on the GPU" if self.resident else "in host memory (too large for the GPU)"
            log.info("training rows (%d ratings) held %s", matrix.nnz, where)

    def batch(self, rows: np.ndarray) -> RatedRows:
        """The given rows (each with at least one entry), padded with the row's first
        column and value 0."""
        index = torch.from_numpy(rows).to(self.indptr.device)
        starts = self.indptr[index]
        counts = self.indptr[index + 1] - starts
        step = torch.arange(max(int(counts.max()), 1), device=index.device)
        inside = step < counts[:, None]
        positions = starts[:, None] + step * inside
        values = self.data[positions] * inside
        columns = self.indices[positions]
        return RatedRows(columns.to(self.device), values.to(self.device), self.n_cols)


def _fits(nbytes: int, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_ROWS_SHARE * free
