import numpy as np
import pytest
import torch

from aerec.data.csr import CsrMatrix
from aerec.train.rows import RatedRows, TrainingRows


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
    rows = TrainingRows(matrix, "cpu").batch(np.array([2, 0]))
    assert rows.n_cols == 6
    expected = matrix.densify(np.array([2, 0]))
    torch.testing.assert_close(rows.dense(), torch.from_numpy(expected))
    # padding adds nothing: the padded slot of row 0 of this batch repeats column 1 with 0
    assert rows.columns.tolist() == [[1, 5], [2, 5]]


def test_at_reads_an_output_at_the_rated_columns() -> None:
    rows = TrainingRows(_matrix(), "cpu").batch(np.array([1, 2]))
    output = torch.arange(12, dtype=torch.float32).reshape(2, 6)
    # row 1 rated column 0 (padded with column 0 again); row 2 rated columns 1 and 5
    assert rows.at(output).tolist() == [[0.0, 0.0], [7.0, 11.0]]


def test_dense_rows_fed_back_cover_every_column() -> None:
    dense = torch.tensor([[0.5, 2.0, 3.0], [1.0, 0.0, 4.0]])
    rows = RatedRows.of_dense(dense)
    assert rows.columns.tolist() == [[0, 1, 2], [0, 1, 2]]
    torch.testing.assert_close(rows.dense(), dense)
    torch.testing.assert_close(rows.dense(rows.values * 2), dense * 2)


GPU = torch.cuda.is_available()  # computed once: the GPU cases run wherever a GPU is
DEVICES = ["cpu", *(["cuda"] if GPU else [])]


def _random_matrix(seed: int = 0) -> CsrMatrix:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 12, 40)
    rows = np.repeat(np.arange(40), counts)
    columns = np.concatenate([np.sort(rng.choice(30, c, replace=False)) for c in counts])
    return CsrMatrix.from_indices(rows, columns, rng.random(rows.size) * 5, 40, 30)


@pytest.mark.parametrize("device", DEVICES)
def test_training_rows_cut_the_batches_the_numpy_padding_does(device: str) -> None:
    """The same columns and values as CsrMatrix.padded, for any rows in any order, on the
    device trained on."""
    matrix = _random_matrix()
    source = TrainingRows(matrix, device)
    assert source.resident
    for rows in (np.array([3, 0, 39, 7]), np.arange(40), np.array([12])):
        batch = source.batch(rows)
        columns, values = matrix.padded(rows)
        assert batch.columns.device.type == device and batch.columns.dtype == torch.int64
        assert batch.columns.tolist() == columns.tolist()
        assert batch.values.tolist() == values.tolist()


def test_training_rows_on_the_cpu_are_the_matrix_itself() -> None:
    matrix = _random_matrix()
    source = TrainingRows(matrix, "cpu")
    assert source.data.data_ptr() == matrix.data.ctypes.data  # no copy of the ratings


@pytest.mark.parametrize("gpu", [GPU])
def test_training_rows_too_large_for_the_gpu_stay_in_host_memory(
    gpu: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not gpu:
        pytest.skip("no CUDA device: the GPU's memory budget applies on a GPU host only")
    import aerec.train.rows as rows_module

    monkeypatch.setattr(rows_module, "DEVICE_ROWS_SHARE", 0.0)
    matrix = _random_matrix()
    source = TrainingRows(matrix, "cuda")
    assert not source.resident and source.data.device.type == "cpu"
    batch = source.batch(np.array([5, 2]))
    assert batch.values.device.type == "cuda"
    assert batch.values.cpu().tolist() == matrix.padded(np.array([5, 2]))[1].tolist()
