"""Readers of a published directory see one complete run or a loud error, never a mix,
while nightly publishes and prunes (README "Reading the published table")."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
from conftest import nightly_run

SHIFT = 1_000_000  # run B's user ids: run A's plus this, so a mixed read is visible
RUNS = 30


def shifted(ratings: Path, out: Path) -> Path:
    frame = pl.read_csv(ratings)
    frame.with_columns(pl.col("userId") + SHIFT).write_csv(out)
    return out


def classify(low: int, high: int, rows: int, expected: dict[str, int]) -> str:
    """Which run a read table is: "A", "B", or "mix" (users of both, or rows of neither)."""
    kind = "A" if high < SHIFT else "B" if low >= SHIFT else "mix"
    return kind if kind != "mix" and rows == expected[kind] else "mix"


def test_readers_never_see_two_runs_mixed(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    ratings = {"A": tiny_data[0], "B": shifted(tiny_data[0], tmp_path / "b.csv")}
    out = tmp_path / "recs"
    expected = {
        kind: nightly_run(tiny_model, path, tmp_path / kind, device="cpu", parts=4)["rows"]
        for kind, path in ratings.items()
    }
    nightly_run(tiny_model, ratings["A"], out, device="cpu", parts=4)
    seen: dict[str, list[str]] = {"duckdb": [], "polars": []}
    errors: dict[str, list[str]] = {"duckdb": [], "polars": []}
    done = threading.Event()

    def duckdb_reader() -> None:  # the README's SQL, through `current` each time
        con = duckdb.connect()
        glob = f"{out}/current/recs/*.parquet"
        while not done.is_set():
            query = f"SELECT min(user_id), max(user_id), count(*) FROM read_parquet('{glob}')"
            try:
                low, high, rows = con.execute(query).fetchone()  # type: ignore[misc]
            except duckdb.Error as error:
                errors["duckdb"].append(str(error))
                continue
            seen["duckdb"].append(classify(low, high, rows, expected))

    def polars_reader() -> None:  # the README's Python: resolve `current` once
        while not done.is_set():
            run = (out / "current").resolve()
            try:
                frame = pl.read_parquet(run / "recs" / "*.parquet")
            except (OSError, pl.exceptions.PolarsError) as error:
                errors["polars"].append(str(error))
                continue
            users = frame["user_id"]
            seen["polars"].append(classify(users.min(), users.max(), frame.height, expected))  # type: ignore[arg-type]

    crashed: list[BaseException] = []

    def guarded(read: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                read()
            except BaseException as error:  # a reader that crashed proves nothing: fail
                crashed.append(error)

        return run

    readers = [threading.Thread(target=guarded(r)) for r in (duckdb_reader, polars_reader)]
    for reader in readers:
        reader.start()
    try:
        for number in range(RUNS):  # the most aggressive pruning: only the current run stays
            kind = "B" if number % 2 == 0 else "A"
            nightly_run(
                tiny_model, ratings[kind], out, device="cpu", keep=1, retain_minutes=0,
                min_rows_fraction=0,
            )  # fmt: skip
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert crashed == []
    for name in ("duckdb", "polars"):
        assert "mix" not in seen[name], name
        assert len(seen[name]) >= 10, (name, len(seen[name]))
        # a reader whose run was pruned under it fails loudly because a file is gone,
        # never with a corrupt or foreign file
        missing = ("No such file", "No files found", "expanded paths were empty")
        loud = [e for e in errors[name] if not any(text in e for text in missing)]
        assert loud == [], (name, loud[:3])
    assert {"A", "B"} <= set(seen["duckdb"] + seen["polars"])


def test_a_listing_through_current_never_opens_the_next_runs_files(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """The deterministic core of the above: a reader lists the table through `current`,
    a run is published before it opens the files; the names it holds lead to no file of
    the new run (it fails loudly), while the run it listed stays whole under runs/."""
    out = tmp_path / "recs"
    first = nightly_run(tiny_model, tiny_data[0], out, device="cpu", parts=4)
    listed = sorted((out / "current" / "recs").glob("*.parquet"))
    nightly_run(tiny_model, tiny_data[0], out, device="cpu", parts=4)
    assert listed and not any(path.exists() for path in listed)
    kept = out / "runs" / first["run"] / "recs"
    assert sorted(p.name for p in kept.iterdir()) == [path.name for path in listed]
