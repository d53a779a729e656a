"""score-all streams: any chunk size, sorted or not, overlapped or not, gives one table;
the reader ahead of the scoring and the writer behind it."""

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import score_table

from aerec.contracts import RECS_SCHEMA
from aerec.data.readers import read_ratings
from aerec.io.sinks import ParquetFileWriter, Written
from aerec.score.overlap import in_background, write_behind
from aerec.score.scorer import BatchScorer, score_users
from aerec.score.vectors import build_user_vectors


@pytest.fixture(scope="module")
def in_memory(tiny_model: Path, tiny_data: tuple[Path, Path]) -> pl.DataFrame:
    """The reference: every user's rows scored from the whole frame at once."""
    scorer = BatchScorer(tiny_model, "cpu")
    vectors = build_user_vectors(read_ratings(tiny_data[0]), scorer.info.items)
    return score_users(scorer, vectors, batch_size=512)


def assert_same_recs(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Same users and ranks, scores within float32 noise of batching, the same item at
    every rank whose score is not tied with a neighbour's."""
    assert got.select("user_id", "rank").equals(want.select("user_id", "rank"))
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-5, atol=1e-6)
    score = want["score"].to_numpy()
    same_user = want["user_id"].to_numpy()
    tied = np.zeros(len(score), dtype=bool)
    close = (np.abs(np.diff(score)) < 1e-5) & (same_user[1:] == same_user[:-1])
    tied[1:] |= close
    tied[:-1] |= close
    assert (got["item_id"].to_numpy() == want["item_id"].to_numpy())[~tied].all()


@pytest.mark.parametrize(("chunk_rows", "overlap"), [(37, True), (1000, False), (10**6, True)])
def test_chunks_and_overlap_change_nothing(
    tiny_model: Path,
    tiny_data: tuple[Path, Path],
    in_memory: pl.DataFrame,
    tmp_path: Path,
    chunk_rows: int,
    overlap: bool,
) -> None:
    out = tmp_path / "recs.parquet"
    manifest = score_table(
        tiny_model,
        tiny_data[0],
        out,
        batch_size=7,
        device="cpu",
        overlap=overlap,
        chunk_rows=chunk_rows,
    )
    assert_same_recs(pl.read_parquet(out), in_memory)
    assert manifest["rows"] == in_memory.height
    assert manifest["users"] == in_memory["user_id"].n_unique()


def test_unsorted_file_with_duplicates(
    tiny_model: Path, tiny_data: tuple[Path, Path], in_memory: pl.DataFrame, tmp_path: Path
) -> None:
    """Shuffled rows plus an older duplicate of some ratings: sorted on disk, latest kept."""
    frame = read_ratings(tiny_data[0])
    older = frame.head(50).with_columns(pl.col("timestamp") - 1, rating=pl.lit(1.0, pl.Float32))
    shuffled = pl.concat([frame, older]).sample(fraction=1.0, shuffle=True, seed=3)
    path = tmp_path / "shuffled.csv"
    shuffled.write_csv(path)
    out = tmp_path / "recs.parquet"
    score_table(tiny_model, path, out, batch_size=5, device="cpu", chunk_rows=400)
    assert_same_recs(pl.read_parquet(out), in_memory)


def test_sink_writes_row_groups_as_rows_arrive(tmp_path: Path) -> None:
    sink = ParquetFileWriter(tmp_path / "t.parquet", {"aerec.k": "2"}, row_group_rows=4)
    for user in range(5):
        rows = {
            "user_id": [user] * 2,
            "rank": [1, 2],
            "item_id": [7, 8],
            "score": [0.5, 0.25],
            "source": ["model"] * 2,
        }
        sink.write(pl.DataFrame(rows, schema=RECS_SCHEMA))
    assert sink.close() == Written(rows=10, users=5)
    parquet = pq.ParquetFile(tmp_path / "t.parquet")
    assert [parquet.metadata.row_group(g).num_rows for g in range(3)] == [4, 4, 2]
    assert parquet.schema_arrow.metadata == {b"aerec.k": b"2"}
    assert pl.read_parquet(tmp_path / "t.parquet")["user_id"].to_list() == [
        u for u in range(5) for _ in range(2)
    ]


def test_background_producer_errors_reach_the_consumer() -> None:
    def numbers():  # type: ignore[no-untyped-def]
        yield 1
        yield 2
        raise ValueError("broken input")

    seen = []
    with pytest.raises(ValueError, match="broken input"):
        for value in in_background(numbers()):
            seen.append(value)
    assert seen == [1, 2]
    assert list(in_background(iter(np.arange(5)), depth=1)) == [0, 1, 2, 3, 4]


def test_the_reader_starts_at_once_and_stops_when_closed_unread() -> None:
    """Reading begins before the consumer asks (it overlaps opening the model); a stream
    closed before its first item stops its worker and runs the producer's clean-up."""
    import threading

    started, cleaned = threading.Event(), threading.Event()

    def numbers():  # type: ignore[no-untyped-def]
        started.set()
        try:
            yield from range(100)
        finally:
            cleaned.set()

    background = in_background(numbers(), depth=1)
    assert started.wait(timeout=10)
    background.close()
    assert cleaned.is_set()
    assert not any(t.name == "aerec-reader" and t.is_alive() for t in threading.enumerate())
    assert list(background) == []


class _Recorded:
    """A RowWriter that records each frame's first user id, held at `hold` until released,
    and fails at `fail`."""

    def __init__(self, hold: int | None = None, fail: int | None = None) -> None:
        import threading

        self.seen: list[int] = []
        self.threads: set[str] = set()
        self.hold, self.fail = hold, fail
        self.release = threading.Event()
        self.released_in_time = True

    def write(self, rows: pl.DataFrame) -> None:
        import threading

        first = int(rows["user_id"][0])
        self.threads.add(threading.current_thread().name)
        if first == self.hold:
            self.released_in_time = self.release.wait(timeout=10)
        if first == self.fail:
            raise OSError("No space left on device")
        self.seen.append(first)

    def close(self) -> Written:
        return Written(rows=len(self.seen), users=len(self.seen))


def _frame(user: int) -> pl.DataFrame:
    return pl.DataFrame({"user_id": [user]})


def test_writes_run_behind_the_caller_in_order() -> None:
    """The caller's write returns while the worker still writes (it releases the worker
    only afterwards); every frame lands, in order, before close returns."""
    writer = _Recorded(hold=1)
    with write_behind(writer) as rows:
        rows.write(_frame(1))
        rows.write(_frame(2))  # the worker is still held at frame 1
        writer.release.set()
        for user in range(3, 8):
            rows.write(_frame(user))
        written = rows.close()
    assert writer.released_in_time  # a synchronous write would have timed out first
    assert writer.seen == list(range(1, 8)) and written.rows == 7
    assert writer.threads == {"aerec-writer_0"}


def test_a_failed_write_reaches_the_caller_and_the_worker_stops() -> None:
    import threading

    writer = _Recorded(fail=2)
    with pytest.raises(OSError, match="No space left"), write_behind(writer, depth=1) as rows:
        for user in range(1, 6):
            rows.write(_frame(user))
        rows.close()
    assert writer.seen == [1]  # depth 1: at most one frame queued behind the failed one
    assert not any(t.name.startswith("aerec-writer") for t in threading.enumerate())
