"""Every ratings layout aerec reads and writes, in one registry: how a file of the layout
is recognised from its content, how it is parsed, how it is written, and which movies
file goes beside it. The readers detect with it, `aerec synth` writes with it, the CLI
help lists it.

A new input layout is one class here and one line in LAYOUTS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from aerec.data.schema import ML100K_GENRES, RATINGS_SCHEMA
from aerec.errors import file_error

REQUIRED = ("user_id", "item_id", "rating")
LATEST_COLUMNS = {
    "userId": "user_id",
    "movieId": "item_id",
    "rating": "rating",
    "timestamp": "timestamp",
}
EXPECTED_COLUMNS = (
    "user_id,item_id,rating[,timestamp] (or ml-latest's userId,movieId,rating[,timestamp])"
)


def canonical_names(columns: list[str]) -> dict[str, str]:
    """Each column's canonical name: ml-latest's names are renamed, others kept."""
    return {c: LATEST_COLUMNS.get(c, c) for c in columns}


@dataclass(frozen=True)
class TextFormat:
    """How a text layout is parsed: read_csv/scan_csv options, and the selection that
    renames the raw columns to canonical names."""

    options: dict[str, Any]
    columns: list[pl.Expr]
    header: list[str] | None = None  # the header line's column names (None: no header)

    def scan(self, path: Path) -> pl.LazyFrame:
        return pl.scan_csv(path, **self.options).select(self.columns)

    def parse(self, lines: bytes) -> pl.DataFrame:
        """Parse whole data lines of the file (never its header line), without copying
        them: the header's names come from `header`."""
        options = self.options
        if self.header is not None:
            options = {**options, "has_header": False, "new_columns": self.header}
        return pl.read_csv(lines, **options).select(self.columns)


class Layout:
    """One ratings layout. `detects` sees the path and its first line (None for a file
    that is not text); `named` says whether a path's name asks for this layout."""

    name = ""
    has_header = True
    description = ""  # for the CLI help
    names = ""  # the file names that ask for it (aerec synth --out)
    movies_file = "movies.csv"

    def detects(self, path: Path, first_line: str | None) -> bool:
        raise NotImplementedError

    def named(self, path: Path) -> bool:
        raise NotImplementedError

    def scan(self, path: Path, as_text: bool) -> pl.LazyFrame:
        """A lazy frame of the file's raw columns, renamed to canonical names (`as_text`:
        every column a string, to find what does not parse)."""
        return self.text_format(path, as_text).scan(path)

    def text_format(self, path: Path, as_text: bool) -> TextFormat:
        raise NotImplementedError

    def write(self, frame: pl.DataFrame, path: Path) -> None:
        raise NotImplementedError

    def write_movies(self, movies: pl.DataFrame, directory: Path) -> Path:
        """The movies file that goes beside ratings of this layout."""
        path = directory / self.movies_file
        movies.rename({"item_id": "movieId"}).write_csv(path)
        return path


class ParquetLayout(Layout):
    name, description = "parquet", "Parquet with columns user_id,item_id,rating[,timestamp]"
    names = ".parquet"

    def detects(self, path: Path, first_line: str | None) -> bool:
        return path.suffix == ".parquet"

    def named(self, path: Path) -> bool:
        return path.suffix == ".parquet"

    def scan(self, path: Path, as_text: bool) -> pl.LazyFrame:
        scan = pl.scan_parquet(path)
        return scan.rename(canonical_names(scan.collect_schema().names()))

    def write(self, frame: pl.DataFrame, path: Path) -> None:
        frame.write_parquet(path)


class _Separated(Layout):
    """MovieLens' headerless user<sep>item<sep>rating<sep>timestamp lines."""

    has_header = False
    separator = ""

    def detects(self, path: Path, first_line: str | None) -> bool:
        return first_line is not None and self.separator in first_line

    def text_format(self, path: Path, as_text: bool) -> TextFormat:
        # '::' is two one-byte separators with an empty field between them.
        step = len(self.separator)
        names = [f"f{i}" for i in range(1 + 3 * step)]
        keep = dict(zip(names[::step], RATINGS_SCHEMA, strict=False))
        text = pl.String()
        types = {
            n: (text if as_text else RATINGS_SCHEMA[keep[n]]) if n in keep else text for n in names
        }
        options = {
            "separator": self.separator[0],
            "has_header": False,
            "schema": types,
            "truncate_ragged_lines": True,
            "quote_char": None,
        }
        return TextFormat(options, [pl.col(n).alias(c) for n, c in keep.items()])

    def write(self, frame: pl.DataFrame, path: Path) -> None:
        rating = pl.col("rating").round(1).cast(pl.String).str.strip_suffix(".0")
        columns = [pl.col("user_id"), pl.col("item_id"), rating, pl.col("timestamp")]
        line = pl.concat_str(columns, separator=self.separator).alias("line")
        frame.select(line).write_csv(path, include_header=False, quote_style="never")


class DatLayout(_Separated):
    name, separator, movies_file = "dat", "::", "movies.dat"
    description = "ML-1M/10M ratings.dat (user::item::rating::timestamp)"
    names = ".dat (ML-1M)"

    def named(self, path: Path) -> bool:
        return path.suffix == ".dat"

    def write_movies(self, movies: pl.DataFrame, directory: Path) -> Path:
        path = directory / self.movies_file
        line = pl.concat_str([pl.col("item_id"), pl.col("title"), pl.col("genres")], separator="::")
        movies.select(line.alias("line")).write_csv(path, include_header=False, quote_style="never")
        return path


class TabLayout(_Separated):
    name, separator, movies_file = "tab", "\t", "u.item"
    description = "ML-100K u.data/u1.base (tab-separated, no header)"
    names = ".data/.base/.test/.tsv (ML-100K)"

    def named(self, path: Path) -> bool:
        return path.suffix in (".data", ".base", ".test", ".tsv")

    def write_movies(self, movies: pl.DataFrame, directory: Path) -> Path:
        path = directory / self.movies_file
        flags = [
            pl.col("genres").str.split("|").list.contains(g).cast(pl.Int8).cast(pl.String)
            for g in ML100K_GENRES
        ]
        cells = [pl.col("item_id"), pl.col("title"), *[pl.lit("")] * 3, *flags]
        rows = movies.select(pl.concat_str(cells, separator="|").alias("line"))
        rows.write_csv(path, include_header=False, quote_style="never")
        return path


def _header_fields(first_line: str | None) -> list[str]:
    if first_line is None or "," not in first_line:
        return []
    return [field.strip().strip('"') for field in first_line.split(",")]


class _HeaderCsv(Layout):
    """A CSV file with a header line naming its columns."""

    rename: ClassVar[dict[str, str]] = {}

    def text_format(self, path: Path, as_text: bool) -> TextFormat:
        header = pl.read_csv(path, n_rows=0).columns
        missing = [c for c, canon in self.rename.items() if canon in REQUIRED and c not in header]
        if missing:
            problem = f"missing column(s) {', '.join(missing)} in header {header}"
            raise file_error(path, f"{problem}; expected {EXPECTED_COLUMNS}", 1)
        text = pl.String()
        overrides = {
            c: (text if as_text else RATINGS_SCHEMA[self.rename[c]])
            for c in header
            if c in self.rename
        }
        options = {"schema_overrides": overrides, "infer_schema": False}
        columns = [pl.col(c).alias(self.rename[c]) for c in header if c in self.rename]
        return TextFormat(options, columns, header)


class LatestCsvLayout(_HeaderCsv):
    name, rename = "csv-latest", LATEST_COLUMNS
    description = "ml-latest/25M/32M ratings.csv (userId,movieId,rating,timestamp)"
    names = "ratings.csv (ml-latest)"

    def detects(self, path: Path, first_line: str | None) -> bool:
        return bool({"userId", "movieId"} & set(_header_fields(first_line)))

    def named(self, path: Path) -> bool:
        return path.name == "ratings.csv"

    def write(self, frame: pl.DataFrame, path: Path) -> None:
        renamed = frame.rename({"user_id": "userId", "item_id": "movieId"})
        renamed.with_columns(pl.col("rating").round(1)).write_csv(path, float_precision=1)


class CsvLayout(_HeaderCsv):
    name, rename = "csv", {c: c for c in RATINGS_SCHEMA}
    description = "CSV with header user_id,item_id,rating[,timestamp]"
    names = ".csv (canonical)"

    def detects(self, path: Path, first_line: str | None) -> bool:
        fields = _header_fields(first_line)
        if fields and fields[0].lstrip("-").replace(".", "", 1).isdigit():
            raise file_error(
                path, "CSV has no header line: expected user_id,item_id,rating[,timestamp]", 1
            )
        return bool(fields)

    def named(self, path: Path) -> bool:
        return path.suffix == ".csv"

    def write(self, frame: pl.DataFrame, path: Path) -> None:
        frame.write_csv(path)


# In the order they are tried: the first that detects a file (or is named by a path) wins.
LAYOUTS: tuple[Layout, ...] = (
    ParquetLayout(),
    DatLayout(),
    TabLayout(),
    LatestCsvLayout(),
    CsvLayout(),
)


def first_line(path: Path) -> str:
    """The file's first line, or one error line: missing, a directory, empty."""
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
    """A ratings file's layout, from its suffix (Parquet) or its first line."""
    path = Path(path)
    parquet = LAYOUTS[0]
    if parquet.detects(path, None):
        if not path.exists():
            raise file_error(path, "no such file")
        return parquet
    line = first_line(path)
    found = _first(lambda layout: layout.detects(path, line))
    if found is None:
        raise file_error(path, f"unrecognised ratings layout in first line: {line[:60]!r}", 1)
    return found


def layout_for_name(path: Path) -> Layout:
    """The layout a path's name asks for (what `aerec synth --out` writes)."""
    found = _first(lambda layout: layout.named(path))
    if found is None:
        raise file_error(
            path,
            "cannot tell the layout from the name; use .parquet, .csv, ratings.csv, .dat or .data",
        )
    return found


def _first(test: Callable[[Layout], bool]) -> Layout | None:
    return next((layout for layout in LAYOUTS if test(layout)), None)


def layouts_help() -> str:
    """The layouts the readers detect, for the CLI help."""
    return "; ".join(layout.description for layout in LAYOUTS)


def names_help() -> str:
    """The file names that choose a layout, for the CLI help."""
    return ", ".join(layout.names for layout in LAYOUTS)
