"""Readers for every MovieLens ratings and movies layout, producing the canonical frames.

The layout is detected from the file itself, not from its name:

- ML-100K ``u.data`` / ``u1.base``: ``user<TAB>item<TAB>rating<TAB>timestamp``, no header;
- ML-1M / ML-10M ``ratings.dat``: ``user::item::rating::timestamp``, no header;
- ml-latest / 25M / 32M ``ratings.csv``: header ``userId,movieId,rating,timestamp``;
- canonical CSV (header ``user_id,item_id,rating[,timestamp]``) or Parquet (same columns).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from aerec.data.schema import ML100K_GENRES, MOVIES_SCHEMA, RATINGS_SCHEMA
from aerec.data.validate import (
    check_integral_ids,
    check_ratings,
    drop_duplicate_pairs,
    first_unparsable,
)
from aerec.errors import InputError, file_error

log = logging.getLogger(__name__)

_REQUIRED = ("user_id", "item_id", "rating")
SAMPLE_BYTES = 1 << 20  # read first, to size the blocks of about chunk_rows lines
_LATEST_HEADER = {
    "userId": "user_id",
    "movieId": "item_id",
    "rating": "rating",
    "timestamp": "timestamp",
}


@dataclass(frozen=True)
class Layout:
    """How one ratings file is laid out."""

    name: str  # tab | dat | csv-latest | csv | parquet
    has_header: bool


def _first_line(path: Path) -> str:
    if not path.exists():
        raise file_error(path, "no such file")
    if path.is_dir():
        raise file_error(path, "is a directory, expected a ratings file")
    with path.open("rb") as handle:
        head = handle.read(4096)
    line = head.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
    if not line.strip():
        raise file_error(path, "file is empty")
    return line


def detect_layout(path: Path) -> Layout:
    """Detect a ratings file's layout from its suffix (Parquet) or first line."""
    path = Path(path)
    if path.suffix == ".parquet":
        if not path.exists():
            raise file_error(path, "no such file")
        return Layout("parquet", has_header=True)
    line = _first_line(path)
    if "::" in line:
        return Layout("dat", has_header=False)
    if "\t" in line:
        return Layout("tab", has_header=False)
    if "," in line:
        fields = [f.strip().strip('"') for f in line.split(",")]
        if fields[0].lstrip("-").replace(".", "", 1).isdigit():
            raise file_error(
                path, "CSV has no header line: expected user_id,item_id,rating[,timestamp]", 1
            )
        if {"userId", "movieId"} & set(fields):
            return Layout("csv-latest", has_header=True)
        return Layout("csv", has_header=True)
    raise file_error(path, f"unrecognised ratings layout in first line: {line[:60]!r}", 1)


@dataclass(frozen=True)
class TextFormat:
    """How a text layout is parsed: read_csv/scan_csv options, and the selection that
    renames the raw columns to canonical names."""

    options: dict[str, Any]
    columns: list[pl.Expr]

    def scan(self, path: Path) -> pl.LazyFrame:
        return pl.scan_csv(path, **self.options).select(self.columns)

    def parse(self, text: bytes) -> pl.DataFrame:
        """Parse whole lines of the file (its header line first, where it has one)."""
        return pl.read_csv(io.BytesIO(text), **self.options).select(self.columns)


def _text_format(path: Path, layout: Layout, as_text: bool) -> TextFormat:
    text = pl.String()
    if layout.name in ("tab", "dat"):
        # '::' is two one-byte separators with an empty field between them.
        sep, step = ("\t", 1) if layout.name == "tab" else (":", 2)
        names = [f"f{i}" for i in range(1 + 3 * step)]
        keep = dict(zip(names[::step], RATINGS_SCHEMA, strict=False))
        types = {
            n: (text if as_text else RATINGS_SCHEMA[keep[n]]) if n in keep else text for n in names
        }
        options = {
            "separator": sep,
            "has_header": False,
            "schema": types,
            "truncate_ragged_lines": True,
            "quote_char": None,
        }
        return TextFormat(options, [pl.col(n).alias(c) for n, c in keep.items()])
    header = pl.read_csv(path, n_rows=0).columns
    rename = _LATEST_HEADER if layout.name == "csv-latest" else {c: c for c in RATINGS_SCHEMA}
    missing = [c for c, canon in rename.items() if canon in _REQUIRED and c not in header]
    if missing:
        raise file_error(path, f"missing column(s) {', '.join(missing)} in header {header}", 1)
    overrides = {c: (text if as_text else RATINGS_SCHEMA[rename[c]]) for c in header if c in rename}
    options = {"schema_overrides": overrides, "infer_schema": False}
    return TextFormat(options, [pl.col(c).alias(rename[c]) for c in header if c in rename])


def _scan(path: Path, layout: Layout, as_text: bool) -> pl.LazyFrame:
    """A lazy frame of the file's raw columns, renamed to canonical names."""
    if layout.name == "parquet":
        return pl.scan_parquet(path)
    return _text_format(path, layout, as_text).scan(path)


def _line_blocks(path: Path, layout: Layout, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """The text file's raw columns in blocks of about `chunk_rows` whole lines.

    The file is read a block of bytes at a time and each block parsed on its own, so
    memory holds one block: Polars' streaming CSV scan reads ahead of a slower consumer
    and held several hundred MB more while a long file was scored.
    """
    parse = _text_format(path, layout, as_text=False).parse
    with path.open("rb") as source:
        header = source.readline() if layout.has_header else b""
        sample = source.read(SAMPLE_BYTES)
        line_bytes = max(1, len(sample) // max(1, sample.count(b"\n")))
        block_bytes = chunk_rows * line_bytes
        pending = sample
        while True:
            more = source.read(block_bytes)
            data = pending + more
            end = data.rfind(b"\n") + 1 if more else len(data)
            if end:
                yield parse(header + data[:end])
            pending = data[end:]
            if not more and not pending:
                return


def read_ratings(path: str | Path, *, dedupe: bool = True) -> pl.DataFrame:
    """Read, validate and canonicalise a ratings file of any supported layout.

    Raises InputError naming the file (and line) on any bad input. Duplicate
    (user, item) pairs keep the latest rating and are counted in a warning.
    """
    path = Path(path)
    layout = detect_layout(path)
    try:
        frame = _scan(path, layout, as_text=False).collect()
    except pl.exceptions.PolarsError as error:
        raise _parse_error(path, layout, error) from None
    frame = _canonical(path, layout, frame)
    if dedupe:
        frame = drop_duplicate_pairs(path, frame)
    log.info("read %s: %d ratings (%s layout)", path, frame.height, layout.name)
    return frame


def canonical_block(source: str | Path, block: pl.DataFrame) -> pl.DataFrame:
    """A block of a Parquet dataset (canonical or ml-latest column names) as the canonical,
    validated ratings frame; errors name the source but no line (a block has none)."""
    names = {c: _LATEST_HEADER.get(c, c) for c in block.columns}
    block = block.rename(names).select([c for c in RATINGS_SCHEMA if c in names.values()])
    return _canonical(Path(source), Layout("parquet", False), block, first_row=None)


def _canonical(
    path: Path, layout: Layout, frame: pl.DataFrame, first_row: int | None = 0
) -> pl.DataFrame:
    """The raw columns as the canonical, validated ratings frame."""
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise file_error(path, f"missing column(s) {', '.join(missing)}")
    if "timestamp" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("timestamp"))
    check_integral_ids(path, frame, layout.has_header, first_row)
    try:
        frame = frame.select([pl.col(c).cast(t) for c, t in RATINGS_SCHEMA.items()])
    except pl.exceptions.InvalidOperationError as error:
        raise file_error(path, f"column has the wrong type: {error}") from None
    check_ratings(path, frame, layout.has_header, first_row)
    return frame


def read_rating_chunks(path: str | Path, chunk_rows: int = 1_000_000) -> Iterator[pl.DataFrame]:
    """The file's validated canonical ratings in chunks of about `chunk_rows`, in file order.

    Memory holds about one chunk, whatever the file's size. Duplicate pairs are not
    removed here (a chunk does not see the others); errors name the file and line.
    """
    path = Path(path)
    layout = detect_layout(path)
    first_row = 0
    try:
        chunks: Iterable[pl.DataFrame]
        if layout.name == "parquet":
            chunks = _scan(path, layout, as_text=False).collect_batches(chunk_size=chunk_rows)
        else:
            chunks = _line_blocks(path, layout, chunk_rows)
        for chunk in chunks:
            yield _canonical(path, layout, chunk, first_row)
            first_row += chunk.height
    except pl.exceptions.PolarsError as error:
        raise _parse_error(path, layout, error) from None
    if first_row == 0:
        raise file_error(path, "file has no ratings")


def _parse_error(path: Path, layout: Layout, error: Exception) -> InputError:
    """The clearest one-line error for a file the typed read rejected.

    Re-reads the file as text to name the first field that is not a number; where even
    that fails (a malformed line), says what the parser said.
    """
    try:
        raw = _scan(path, layout, as_text=True).collect()
        found = first_unparsable(path, raw, layout.has_header)
    except pl.exceptions.PolarsError as text_error:
        error, found = text_error, None
    return found or file_error(path, f"cannot parse: {str(error).splitlines()[0]}")


def read_movies(path: str | Path) -> pl.DataFrame:
    """Read u.item, movies.dat or movies.csv into (item_id, title, genres)."""
    path = Path(path)
    try:
        return _read_movies(path)
    except UnicodeDecodeError:
        raise file_error(path, "not UTF-8 text (movies.csv must be UTF-8)") from None
    except (ValueError, IndexError, pl.exceptions.PolarsError) as error:
        if "utf-8" in str(error).lower():
            raise file_error(path, "not UTF-8 text (movies.csv must be UTF-8)") from None
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise file_error(path, f"not a movies file ({first})") from None


def _read_movies(path: Path) -> pl.DataFrame:
    line = _first_line(path)
    if "::" in line:
        rows = [r.split("::") for r in _latin1_lines(path)]
        records = [(int(r[0]), r[1], r[2] if len(r) > 2 else "") for r in rows]
    elif line.count("|") >= 5:
        records = []
        for fields in (r.split("|") for r in _latin1_lines(path)):
            flags = fields[-len(ML100K_GENRES) :]
            genres = "|".join(g for g, f in zip(ML100K_GENRES, flags, strict=True) if f == "1")
            records.append((int(fields[0]), fields[1], genres))
    else:
        frame = pl.read_csv(path, infer_schema=False)
        rename = {"movieId": "item_id", "item_id": "item_id", "title": "title", "genres": "genres"}
        frame = frame.rename({c: rename[c] for c in frame.columns if c in rename})
        if not {"item_id", "title"} <= set(frame.columns):
            raise file_error(path, "movies CSV needs columns movieId (or item_id) and title", 1)
        if "genres" not in frame.columns:
            frame = frame.with_columns(pl.lit("").alias("genres"))
        return frame.select([pl.col(c).cast(t) for c, t in MOVIES_SCHEMA.items()])
    return pl.DataFrame(records, schema=MOVIES_SCHEMA, orient="row")


def _latin1_lines(path: Path) -> list[str]:
    text = path.read_bytes().decode("latin-1")
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]
