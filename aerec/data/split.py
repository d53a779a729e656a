"""Train/test splits by SPEC: random:F, temporal:Q, user-temporal:F, files:TRAIN,TEST."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from aerec.contracts import Dropped, SideStats, SplitStats
from aerec.data.readers import read_ratings
from aerec.errors import InputError

log = logging.getLogger(__name__)

SPLIT_KINDS = ("random", "temporal", "user-temporal", "files")


@dataclass(frozen=True)
class SplitSpec:
    """A parsed split SPEC."""

    kind: str
    fraction: float = 0.0
    files: tuple[str, str] = ("", "")

    @classmethod
    def parse(cls, spec: str) -> SplitSpec:
        kind, _, arg = spec.partition(":")
        if kind not in SPLIT_KINDS or not arg:
            raise InputError(
                f"split {spec!r}: expected random:F, temporal:Q, user-temporal:F, files:A,B or none"
            )
        if kind == "files":
            names = arg.split(",")
            if len(names) != 2 or not all(names):
                raise InputError(f"split {spec!r}: files: takes TRAIN,TEST")
            return cls(kind, files=(names[0], names[1]))
        try:
            fraction = float(arg)
        except ValueError:
            raise InputError(f"split {spec!r}: {arg!r} is not a number") from None
        if not 0.0 < fraction < 1.0:
            raise InputError(f"split {spec!r}: the fraction must lie strictly between 0 and 1")
        return cls(kind, fraction=fraction)


@dataclass(frozen=True)
class Split:
    """Train and test ratings; test holds only users and items seen in train."""

    spec: str
    train: pl.DataFrame
    test: pl.DataFrame
    cold: pl.DataFrame  # test ratings dropped because their user or item is not in train

    def stats(self) -> SplitStats:
        unknown_user = ~self.cold["user_id"].is_in(self.train["user_id"].unique().implode())
        cold_users = int(unknown_user.sum())
        return SplitStats(
            spec=self.spec,
            train=side_stats(self.train),
            test=side_stats(self.test),
            dropped=Dropped(
                total=self.cold.height,
                cold_user=cold_users,
                cold_item=self.cold.height - cold_users,
            ),
        )


def side_stats(frame: pl.DataFrame) -> SideStats:
    """Ratings, users and items of one frame."""
    return SideStats(
        ratings=frame.height,
        users=frame["user_id"].n_unique(),
        items=frame["item_id"].n_unique(),
    )


def _separate_cold(spec: str, train: pl.DataFrame, test: pl.DataFrame) -> Split:
    known = pl.col("user_id").is_in(train["user_id"].unique().implode()) & pl.col("item_id").is_in(
        train["item_id"].unique().implode()
    )
    split = Split(spec, train, test.filter(known), test.filter(~known))
    if split.cold.height:
        log.info(
            "%s: dropped %d test ratings of users or items absent from train",
            spec,
            split.cold.height,
        )
    return split


def positives_only(split: Split, threshold: float) -> Split:
    """The split as implicit feedback: only ratings >= `threshold`, each stored as 1, on
    both sides; a test rating whose user or item keeps no training rating becomes cold."""
    kept = [
        side.filter(pl.col("rating") >= threshold).with_columns(
            pl.lit(1.0, side.schema["rating"]).alias("rating")
        )
        for side in (split.train, split.test, split.cold)
    ]
    spec = f"{split.spec}, ratings >= {threshold:g} as 1"
    implicit = _separate_cold(spec, kept[0], kept[1])
    return replace(implicit, cold=pl.concat([kept[2], implicit.cold]))


def _require_timestamps(frame: pl.DataFrame, spec: str) -> None:
    if frame["timestamp"].null_count():
        raise InputError(f"split {spec!r} needs timestamps, and the ratings have none")


def split_frame(frame: pl.DataFrame, spec: str, seed: int = 0) -> Split:
    """Split one canonical frame by a random, temporal or user-temporal SPEC."""
    parsed = SplitSpec.parse(spec)
    if parsed.kind == "files":
        raise InputError(f"split {spec!r} reads files: use load_split")
    if parsed.kind == "random":
        n_test = round(parsed.fraction * frame.height)
        in_test = np.zeros(frame.height, dtype=bool)
        in_test[np.random.default_rng(seed).permutation(frame.height)[:n_test]] = True
        mask = pl.Series(in_test)
        return _separate_cold(spec, frame.filter(~mask), frame.filter(mask))
    _require_timestamps(frame, spec)
    if parsed.kind == "temporal":
        cutoff = float(np.quantile(frame["timestamp"].to_numpy(), parsed.fraction))
        later = pl.col("timestamp") > cutoff
        return _separate_cold(spec, frame.filter(~later), frame.filter(later))
    # user-temporal: each user's latest floor(F * n) ratings; ties broken by item id.
    ordered = frame.sort(["user_id", "timestamp", "item_id"])
    position = pl.int_range(pl.len()).over("user_id")
    per_user_test = (pl.len().over("user_id") * parsed.fraction).floor().cast(pl.Int64)
    later = position >= pl.len().over("user_id") - per_user_test
    marked = ordered.with_columns(later.alias("_test"))
    return _separate_cold(
        spec,
        marked.filter(~pl.col("_test")).drop("_test"),
        marked.filter(pl.col("_test")).drop("_test"),
    )


def _resolve(name: str, beside: Path) -> Path:
    path = Path(name)
    if path.is_absolute() or path.exists():
        return path
    return beside.parent / name


NO_SPLIT = "none"  # every rating is on the train side (the production model)


def load_split(
    ratings: str | Path, spec: str, seed: int = 0, frame: pl.DataFrame | None = None
) -> Split:
    """Read the ratings and split them; files:TRAIN,TEST are found beside the ratings file.
    `none` puts every rating on the train side and leaves the test side empty. `frame`:
    the ratings file already read (so it is not read again)."""
    if spec == NO_SPLIT:
        frame = read_ratings(ratings) if frame is None else frame
        return Split(spec, frame, frame.head(0), frame.head(0))
    parsed = SplitSpec.parse(spec)
    ratings = Path(ratings)
    if parsed.kind != "files":
        return split_frame(read_ratings(ratings) if frame is None else frame, spec, seed)
    train_path, test_path = (_resolve(name, ratings) for name in parsed.files)
    return _separate_cold(spec, read_ratings(train_path), read_ratings(test_path))
