"""A training batch in the sparse form the scoring graph reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aerec.data.csr import CsrMatrix


@dataclass(frozen=True)
class RatedRows:
    """A training batch as each row's rated columns and values, [batch, width], padded
    with value 0: the form the scoring graph reads. No [batch, n_cols] work is done on
    the rows until a network's first layer needs it."""

    columns: torch.Tensor  # int64
    values: torch.Tensor  # float32
    n_cols: int

    @classmethod
    def of(cls, matrix: CsrMatrix, rows: np.ndarray, device: str) -> RatedRows:
        """The given rows of `matrix`."""
        columns, values = matrix.padded(rows)
        return cls(
            torch.from_numpy(columns).to(device), torch.from_numpy(values).to(device), matrix.n_cols
        )

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
