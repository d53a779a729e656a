"""Ratings as a stream of complete users in ascending user order, in bounded memory.

A file sorted by user (ML-1M, ml-latest, ML-25M, a table written by user) streams in
one pass, holding about one chunk. Any other order is first bucketed on disk by equal
user-id ranges (about one chunk of ratings each), then each bucket is sorted in memory;
very unevenly spread ids make some buckets larger.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import polars as pl

from aerec.data.readers import read_rating_chunks
from aerec.io.scratch import remove_abandoned, scratch_dir

log = logging.getLogger(__name__)

CHUNK_ROWS = 1_000_000


class NotSortedByUser(Exception):
    """The stream's user ids went down: it must be sorted first."""


def complete_users(chunks: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
    """Regroup file-order chunks of a stream sorted by user into frames of whole users.

    Each frame holds every rating of its users (in file order) and ends where a user ends.
    Raises NotSortedByUser as soon as a user id is lower than the one before it.
    """
    carry: pl.DataFrame | None = None
    for chunk in chunks:
        users = chunk["user_id"].to_numpy()
        if users.size == 0:
            continue
        if np.any(users[1:] < users[:-1]) or (carry is not None and users[0] < carry["user_id"][0]):
            raise NotSortedByUser
        last = int(np.searchsorted(users, users[-1]))  # where the chunk's last user begins
        if carry is not None:
            last = 0 if carry["user_id"][0] == users[-1] else carry.height + last
            chunk = pl.concat([carry, chunk])
        if last:
            yield chunk.slice(0, last)
        carry = chunk.slice(last)
    if carry is not None:
        yield carry


def _range_buckets(path: Path, chunk_rows: int, directory: Path) -> Iterator[pl.DataFrame]:
    """Buckets of whole users by user-id range, ascending, each sorted by user."""
    low, high, total = None, None, 0
    for chunk in read_rating_chunks(path, chunk_rows):
        users = chunk["user_id"].to_numpy()
        low = int(users.min()) if low is None else min(low, int(users.min()))
        high = int(users.max()) if high is None else max(high, int(users.max()))
        total += chunk.height
    assert low is not None and high is not None  # read_rating_chunks refuses an empty file
    buckets = max(1, -(-total // chunk_rows))
    width = (high - low) // buckets + 1
    for number, chunk in enumerate(read_rating_chunks(path, chunk_rows)):
        bucket = chunk.with_columns(((pl.col("user_id") - low) // width).alias("_bucket"))
        for (key,), part in bucket.group_by("_bucket"):
            folder = directory / f"{int(key):06d}"
            folder.mkdir(exist_ok=True)
            part.drop("_bucket").write_parquet(folder / f"{number:06d}.parquet")
    for folder in sorted(directory.iterdir()):
        frame = pl.read_parquet(sorted(folder.iterdir()))  # file order kept within a user
        shutil.rmtree(folder)
        yield frame.sort("user_id", maintain_order=True)


SORT_PREFIX = "aerec-sort-"  # + the sorting process's pid + "-": its bucket directory


def remove_abandoned_sorts(parent: Path | None = None) -> list[str]:
    """Remove the bucket directories of sorts whose process is gone (a run killed while
    sorting)."""
    return remove_abandoned(SORT_PREFIX, "on-disk sort", parent)


def sort_on_disk(path: str | Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[pl.DataFrame]:
    """The file's ratings as user-sorted chunks, through a temporary bucket directory
    (named with this process's pid, so a later run can remove it if this one is killed)."""
    directory = scratch_dir(SORT_PREFIX)
    try:
        log.info("%s is not sorted by user: bucketing it by user on disk first", path)
        yield from _range_buckets(Path(path), chunk_rows, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
