import numpy as np
import torch

from aerec.data.csr import CsrMatrix
from aerec.train.rows import RatedRows


def _matrix() -> CsrMatrix:
    return CsrMatrix.from_indices(
        np.array([0, 0, 1, 2, 2]),
        np.array([2, 5, 0, 1, 5]),
        np.array([4.0, 1.0, 3.0, 5.0, 2.0]),
        3,
        6,
    )


def test_rated_rows_are_the_chosen_rows_made_dense_exactly() -> None:
    matrix = _matrix()
    rows = RatedRows.of(matrix, np.array([2, 0]), "cpu")
    assert rows.n_cols == 6
    expected = matrix.densify(np.array([2, 0]))
    torch.testing.assert_close(rows.dense(), torch.from_numpy(expected))
    # padding adds nothing: the padded slot of row 0 of this batch repeats column 1 with 0
    assert rows.columns.tolist() == [[1, 5], [2, 5]]


def test_at_reads_an_output_at_the_rated_columns() -> None:
    rows = RatedRows.of(_matrix(), np.array([1, 2]), "cpu")
    output = torch.arange(12, dtype=torch.float32).reshape(2, 6)
    # row 1 rated column 0 (padded with column 0 again); row 2 rated columns 1 and 5
    assert rows.at(output).tolist() == [[0.0, 0.0], [7.0, 11.0]]


def test_dense_rows_fed_back_cover_every_column() -> None:
    dense = torch.tensor([[0.5, 2.0, 3.0], [1.0, 0.0, 4.0]])
    rows = RatedRows.of_dense(dense)
    assert rows.columns.tolist() == [[0, 1, 2], [0, 1, 2]]
    torch.testing.assert_close(rows.dense(), dense)
    torch.testing.assert_close(rows.dense(rows.values * 2), dense * 2)
