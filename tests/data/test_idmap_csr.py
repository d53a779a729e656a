from pathlib import Path

import numpy as np
import polars as pl

from aerec.data.csr import CsrMatrix
from aerec.data.idmap import IdMap


def test_idmap_exact_example(tmp_path: Path) -> None:
    ids = IdMap.from_ids(np.array([30, 10, 20, 10]))
    assert ids.ids.tolist() == [10, 20, 30]
    assert ids.index(np.array([20, 10, 99, 30, 5])).tolist() == [1, 0, -1, 2, -1]
    ids.save(tmp_path / "items.parquet")
    assert IdMap.load(tmp_path / "items.parquet").ids.tolist() == [10, 20, 30]


def test_the_lookup_table_and_the_binary_search_give_the_same_indices() -> None:
    """Dense ids take the lookup table, sparse ones the binary search: the same answer for
    known ids, ids between them, below the smallest, above the largest and negative."""
    rng = np.random.default_rng(0)
    dense = IdMap.from_ids(rng.choice(np.arange(100, 5_000), 3_000, replace=False))
    sparse = IdMap(dense.ids * 10**9)
    assert dense._lookup is not None and sparse._lookup is None
    assert IdMap(np.arange(0, 1 << 26, 4))._lookup is None  # dense, but over 64 MiB
    probe = np.concatenate([rng.integers(-50, 5_200, 10_000), dense.ids, [100, 4_999, -1]])
    want = np.array([np.searchsorted(dense.ids, v) for v in probe])
    want = np.where(dense.ids[np.minimum(want, len(dense) - 1)] == probe, want, -1)
    assert dense.index(probe).tolist() == want.tolist()
    assert sparse.index(probe * 10**9).tolist() == want.tolist()
    inside = rng.permutation(np.repeat(dense.ids, 2))  # every id known: the one-gather path
    assert dense.index(inside).tolist() == np.searchsorted(dense.ids, inside).tolist()
    assert IdMap.from_ids(np.array([3, 3, 5, 9, 9])).ids.tolist() == [3, 5, 9]  # sorted input
    assert IdMap.from_ids(np.array([9, 3, 5, 3])).ids.tolist() == [3, 5, 9]


def test_encode_gives_the_map_and_every_value_s_index() -> None:
    """Ascending values (a stream by user) take the runs; any other order the sort."""
    for values, ids, index in [
        ([3, 3, 5, 9, 9, 9], [3, 5, 9], [0, 0, 1, 2, 2, 2]),
        ([9, 3, 5, 3, 9], [3, 5, 9], [2, 0, 1, 0, 2]),
        ([7], [7], [0]),
        ([], [], []),
    ]:
        found, positions = IdMap.encode(np.array(values, dtype=np.int64))
        assert found.ids.tolist() == ids and positions.tolist() == index
        assert positions.dtype == np.int64


def test_csr_from_frame_and_densify() -> None:
    frame = pl.DataFrame(
        {"user_id": [7, 5, 7, 5], "item_id": [300, 100, 100, 200], "rating": [1.0, 2.0, 3.0, 4.0]}
    )
    users, items = IdMap.from_ids(frame["user_id"]), IdMap.from_ids(frame["item_id"])
    csr = CsrMatrix.from_frame(frame, users, items)
    assert csr.indptr.tolist() == [0, 2, 4]
    assert csr.indices.tolist() == [0, 1, 0, 2]
    assert csr.data.tolist() == [2.0, 4.0, 3.0, 1.0]
    expected = np.array([[3.0, 0.0, 1.0], [2.0, 4.0, 0.0]], dtype=np.float32)
    buffer = np.full((4, 3), 9.0, dtype=np.float32)
    np.testing.assert_array_equal(csr.densify(np.array([1, 0]), buffer), expected)
    np.testing.assert_array_equal(csr.densify(np.array([1])), expected[:1])


def test_densify_empty_row() -> None:
    csr = CsrMatrix.from_indices(np.array([1]), np.array([2]), np.array([5.0]), 3, 4)
    np.testing.assert_array_equal(
        csr.densify(np.array([0, 1, 2])), [[0, 0, 0, 0], [0, 0, 5, 0], [0, 0, 0, 0]]
    )


def test_padded_rows_exact_example() -> None:
    """Each row's columns and values, padded to the widest row with its first column and 0;
    an empty row is column 0 with value 0."""
    matrix = CsrMatrix.from_indices(
        np.array([0, 0, 0, 2]), np.array([1, 4, 6, 3]), np.array([5.0, 3.0, 1.0, 2.0]), 3, 7
    )
    columns, values = matrix.padded()
    assert columns.dtype == np.int64 and values.dtype == np.float32
    assert columns.tolist() == [[1, 4, 6], [0, 0, 0], [3, 3, 3]]
    assert values.tolist() == [[5.0, 3.0, 1.0], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]


def test_padded_given_rows_exact_example() -> None:
    """Chosen rows, in the order given, padded to the widest of them; a trailing empty
    row and a matrix with no entries at all."""
    matrix = CsrMatrix.from_indices(
        np.array([0, 0, 0, 2]), np.array([1, 4, 6, 3]), np.array([5.0, 3.0, 1.0, 2.0]), 4, 7
    )
    columns, values = matrix.padded(np.array([2, 3, 2]))
    assert columns.tolist() == [[3], [0], [3]] and values.tolist() == [[2.0], [0.0], [2.0]]
    columns, values = matrix.padded(np.array([2, 0]))
    assert columns.tolist() == [[3, 3, 3], [1, 4, 6]]
    assert values.tolist() == [[2.0, 0.0, 0.0], [5.0, 3.0, 1.0]]
    empty = CsrMatrix.from_indices(
        np.array([], np.int64), np.array([], np.int32), np.array([]), 2, 3
    )
    columns, values = empty.padded()
    assert columns.tolist() == [[0], [0]] and values.tolist() == [[0.0], [0.0]]
    assert columns.dtype == np.int64 and values.dtype == np.float32
