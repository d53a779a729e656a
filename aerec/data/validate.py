"""Validation of canonical ratings frames, with errors that name the file and line."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from aerec.data.schema import RATING_MAX, RATING_MIN, RATINGS_SCHEMA
from aerec.errors import InputError, file_error

log = logging.getLogger(__name__)


def _line(row: int, has_header: bool, first_row: int | None = 0) -> int | None:
    """The 1-based file line of a 0-based data row of a chunk starting at `first_row`
    (None where the frame's place in the file is unknown, e.g. a block of a dataset)."""
    return None if first_row is None else first_row + row + 1 + int(has_header)


def _first_row(frame: pl.DataFrame, condition: pl.Expr) -> int | None:
    hits = frame.lazy().with_row_index("_row").filter(condition).select("_row").head(1).collect()
    return int(hits.item()) if hits.height else None


def first_unparsable(path: Path, raw: pl.DataFrame, has_header: bool) -> InputError | None:
    """The error for the first field of a text frame that is not a number, if any."""
    for column in raw.columns:
        target = RATINGS_SCHEMA[column]
        value = pl.col(column).str.strip_chars()
        bad = value.is_not_null() & (value != "") & value.cast(target, strict=False).is_null()
        row = _first_row(raw, bad)
        if row is not None:
            text = raw[column][row]
            return file_error(path, f"{column} is not a number: {text!r}", _line(row, has_header))
    return None


def check_integral_ids(
    path: Path, frame: pl.DataFrame, has_header: bool, first_row: int | None = 0
) -> None:
    """Refuse float user or item ids that are not whole numbers (7.2 is not user 7)."""
    for column in ("user_id", "item_id"):
        if not frame.schema[column].is_float():
            continue
        row = _first_row(frame, pl.col(column) != pl.col(column).round())
        if row is not None:
            value = frame[column][row]
            line = _line(row, has_header, first_row)
            raise file_error(path, f"{column} is not an integer: {value!r}", line)


def check_ratings(
    path: Path, frame: pl.DataFrame, has_header: bool, first_row: int | None = 0
) -> None:
    """Raise InputError for an empty frame, missing values, NaN or out-of-scale ratings.

    `first_row` is the file's data row the frame starts at (a chunk of a larger file).
    """
    if frame.height == 0 and first_row == 0:
        raise file_error(path, "file has no ratings")
    for column in ("user_id", "item_id", "rating"):
        row = _first_row(frame, pl.col(column).is_null())
        if row is not None:
            raise file_error(
                path, f"missing value in column {column}", _line(row, has_header, first_row)
            )
    row = _first_row(frame, pl.col("rating").is_nan())
    if row is not None:
        raise file_error(path, "rating is NaN", _line(row, has_header, first_row))
    outside = (pl.col("rating") < RATING_MIN) | (pl.col("rating") > RATING_MAX)
    row = _first_row(frame, outside)
    if row is not None:
        value = frame["rating"][row]
        raise file_error(
            path,
            f"rating {value:g} outside the scale {RATING_MIN:g}..{RATING_MAX:g}",
            _line(row, has_header, first_row),
        )


def drop_duplicate_pairs(path: Path, frame: pl.DataFrame) -> pl.DataFrame:
    """Keep the latest rating of each (user, item) pair and warn with the count dropped."""
    largest_item, smallest_item, largest_user = frame.select(
        pl.col("item_id").max().alias("largest_item"),
        pl.col("item_id").min().alias("smallest_item"),
        pl.col("user_id").abs().max().alias("largest_user"),
    ).row(0)
    width = int(largest_item) + 1
    fits = int(largest_user) * width < 2**62 and int(smallest_item) >= 0
    # One int64 key per pair hashes far faster and lighter than a struct of two columns.
    pair = (
        pl.col("user_id") * width + pl.col("item_id") if fits else pl.struct("user_id", "item_id")
    )
    pairs = frame.select(pair.n_unique()).item()
    duplicates = frame.height - pairs
    if duplicates == 0:
        return frame
    log.warning("%s: %d duplicate (user, item) ratings; kept the latest of each", path, duplicates)
    latest_last = frame.with_row_index("_row").sort(["timestamp", "_row"], nulls_last=False)
    return latest_last.unique(subset=["user_id", "item_id"], keep="last").sort("_row").drop("_row")
