"""Descriptive statistics of a ratings frame (what `aerec describe` prints)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl

from aerec.contracts import MIN_SHARED_ITEMS
from aerec.errors import GateRefused


def _distribution(counts: pl.Series) -> dict[str, float]:
    values = counts.to_numpy()
    return {
        "min": int(values.min()),
        "median": float(np.median(values)),
        "mean": round(float(values.mean()), 2),
        "max": int(values.max()),
    }


def popularity_agreement(model_counts: np.ndarray, data_counts: np.ndarray) -> tuple[float, int]:
    """How alike two item popularities rank: Spearman's correlation of the rating counts
    over the items both rated, and how many those are (aligned arrays, one per item)."""
    shared = (np.asarray(model_counts) > 0) & (np.asarray(data_counts) > 0)
    if shared.sum() < 2:
        return float("nan"), int(shared.sum())
    ranks = [
        pl.Series(np.asarray(c)[shared]).rank().to_numpy() for c in (model_counts, data_counts)
    ]
    if ranks[0].std() == 0 or ranks[1].std() == 0:
        return 1.0 if np.array_equal(ranks[0], ranks[1]) else 0.0, int(shared.sum())
    return float(np.corrcoef(ranks[0], ranks[1])[0, 1]), int(shared.sum())


def check_popularity(
    source: object, model_counts: np.ndarray, data_counts: np.ndarray, min_agreement: float
) -> None:
    """Refuse ratings whose item popularity ranks unlike the model's training data's
    (another data set whose ids overlap, shuffled ids): InputError naming the source."""
    agreement, shared = popularity_agreement(model_counts, data_counts)
    if shared >= MIN_SHARED_ITEMS and not agreement >= min_agreement:
        raise GateRefused(
            "min_popularity_agreement",
            f"{source}: the ratings do not look like the data the model was trained on: "
            f"item popularity ranks alike at Spearman {agreement:.2f} over {shared:,} items "
            f"(limit {min_agreement:.2f}, --min-popularity-agreement); nothing published",
        )


def _iso(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def describe_ratings(frame: pl.DataFrame) -> dict[str, Any]:
    """Counts, rating histogram, time range and ratings per user and per item."""
    users = frame["user_id"].n_unique()
    items = frame["item_id"].n_unique()
    histogram = frame.group_by("rating").len().sort("rating")
    timestamps = frame["timestamp"].drop_nulls()
    return {
        "ratings": frame.height,
        "users": users,
        "items": items,
        "density": round(frame.height / (users * items), 6),
        "mean_rating": round(float(frame.select(pl.col("rating").mean()).item()), 4),
        "histogram": {f"{r:g}": n for r, n in histogram.iter_rows()},
        "time_range": {
            "first": _iso(int(timestamps.to_numpy().min()) if len(timestamps) else None),
            "last": _iso(int(timestamps.to_numpy().max()) if len(timestamps) else None),
        },
        "per_user": _distribution(frame.group_by("user_id").len()["len"]),
        "per_item": _distribution(frame.group_by("item_id").len()["len"]),
    }


def format_description(title: str, stats: dict[str, Any]) -> str:
    """Readable multi-line rendering of describe_ratings output."""
    lines = [
        f"{title}: {stats['ratings']:,} ratings, {stats['users']:,} users, "
        f"{stats['items']:,} items (density {stats['density']:.4%}, mean {stats['mean_rating']})",
        "  ratings histogram: " + ", ".join(f"{r}: {n:,}" for r, n in stats["histogram"].items()),
        f"  time range: {stats['time_range']['first']} .. {stats['time_range']['last']}",
    ]
    for side in ("per_user", "per_item"):
        d = stats[side]
        lines.append(
            f"  ratings {side.replace('_', ' ')}: min {d['min']}, median {d['median']:g}, "
            f"mean {d['mean']}, max {d['max']}"
        )
    return "\n".join(lines)
