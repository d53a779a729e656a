"""Readers for every MovieLens ratings and movies layout, producing the canonical frames.

The layout is detected from the file itself, not from its name, by the registry in
aerec.data.layouts (ML-100K tab-separated, ML-1M/10M `::`, ml-latest/25M/32M ratings.csv,
canonical CSV or Parquet).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from aerec.data.layouts import (
    EXPECTED_COLUMNS,
    REQUIRED,
    Layout,
    ParquetLayout,
    canonical_names,
    detect_layout,
    first_line,
)
from aerec.data.schema import ML100K_GENRES, MOVIES_SCHEMA, RATINGS_SCHEMA
from aerec.data.validate import (
    check_integral_ids,
    check_ratings,
    drop_duplicate_pairs,
    first_unparsable,
)
from aerec.errors import InputError, file_error

log = logging.getLogger(__name__)

SAMPLE_BYTES = 1 << 20  # read first, to size the blocks of about chunk_rows lines
TAIL_BYTES = 1 << 16  # searched for a block's last newline


def _line_blocks(path: Path, layout: Layout, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """The text file's raw columns in blocks of about `chunk_rows` whole lines.

    Each block is read at its own offset in one call and parsed as read (no copy, no
    header prepended), so memory holds one block: Polars' streaming CSV scan reads ahead
    of a slower consumer and held several hundred MB more while a long file was scored.
    """
    parse = layout.text_format(path, as_text=False).parse
    with path.open("rb") as source:
        start = len(source.readline()) if layout.has_header else 0
        handle, size = source.fileno(), os.fstat(source.fileno()).st_size
        sample = os.pread(handle, SAMPLE_BYTES, start)
        block_bytes = chunk_rows * max(1, len(sample) // max(1, sample.count(b"\n")))
        while start < size:
            end = _lines_end(handle, start, start + block_bytes, size)
            yield parse(os.pread(handle, end - start, start))
            start = end


def _lines_end(handle: int, start: int, wanted: int, size: int) -> int:
    """The offset just past the last newline of the file's bytes [start, wanted) (a line
    longer than TAIL_BYTES there: of a later stretch), or the file's size."""
    while wanted < size:
        low = max(start, wanted - TAIL_BYTES)
        cut = os.pread(handle, wanted - low, low).rfind(b"\n")
        if cut >= 0:
            return low + cut + 1
        wanted += TAIL_BYTES
    return size


def read_ratings(path: str | Path, *, dedupe: bool = True) -> pl.DataFrame:
    """Read, validate and canonicalise a ratings file of any supported layout.

    Raises InputError naming the file (and line) on any bad input. Duplicate
    (user, item) pairs keep the latest rating and are counted in a warning.
    """
    path = Path(path)
    layout = detect_layout(path)
    try:
        frame = layout.scan(path, as_text=False).collect()
    except pl.exceptions.PolarsError as error:
        raise _parse_error(path, layout, error) from None
    frame = _canonical(path, layout.has_header, frame)
    if dedupe:
        frame = drop_duplicate_pairs(path, frame)
    log.info("read %s: %d ratings (%s layout)", path, frame.height, layout.name)
    return frame


def canonical_block(source: str | Path, block: pl.DataFrame) -> pl.DataFrame:
    """A block of a Parquet dataset (canonical or ml-latest column names) as the canonical,
    validated ratings frame; errors name the source but no line (a block has none)."""
    names = canonical_names(block.columns)
    block = block.rename(names).select([c for c in RATINGS_SCHEMA if c in names.values()])
    return _canonical(Path(source), False, block, first_row=None)


def _canonical(
    path: Path, has_header: bool, frame: pl.DataFrame, first_row: int | None = 0
) -> pl.DataFrame:
    """The raw columns as the canonical, validated ratings frame."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        problem = f"missing column(s) {', '.join(missing)} among {frame.columns}"
        raise file_error(path, f"{problem}; expected {EXPECTED_COLUMNS}")
    if "timestamp" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("timestamp"))
    check_integral_ids(path, frame, has_header, first_row)
    try:
        frame = frame.select([pl.col(c).cast(t) for c, t in RATINGS_SCHEMA.items()])
    except pl.exceptions.InvalidOperationError as error:
        raise file_error(path, f"column has the wrong type: {error}") from None
    check_ratings(path, frame, has_header, first_row)
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
        if isinstance(layout, ParquetLayout):
            chunks = layout.scan(path, as_text=False).collect_batches(chunk_size=chunk_rows)
        else:
            chunks = _line_blocks(path, layout, chunk_rows)
        for chunk in chunks:
            yield _canonical(path, layout.has_header, chunk, first_row)
            first_row += chunk.height
    except pl.exceptions.PolarsError as error:
        raise _parse_error(path, layout, error) from None
    if first_row == 0:
        raise file_error(path, "file has no ratings")


def write_canonical_parquet(path: str | Path, out: Path, chunk_rows: int = 1_000_000) -> int:
    """The file's validated canonical ratings as one Parquet file `out`, written chunk by
    chunk (memory: about one chunk); returns how many ratings it holds."""
    import pyarrow.parquet as pq

    schema = pl.DataFrame(schema=RATINGS_SCHEMA).to_arrow().schema
    count = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for chunk in read_rating_chunks(path, chunk_rows):
            writer.write_table(chunk.to_arrow().cast(schema))
            count += chunk.height
    return count


def _parse_error(path: Path, layout: Layout, error: Exception) -> InputError:
    """The clearest one-line error for a file the typed read rejected.

    Re-reads the file as text to name the first field that is not a number; where even
    that fails (a malformed line), says what the parser said.
    """
    try:
        raw = layout.scan(path, as_text=True).collect()
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
    line = first_line(path)
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
