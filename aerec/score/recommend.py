"""One user's recommendations with titles and genres (what `aerec recommend` prints)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from aerec.data.readers import read_movies, read_ratings
from aerec.errors import InputError
from aerec.score.scorer import BatchScorer, score_users
from aerec.score.vectors import build_user_vectors


def recommend_user(
    model: str | Path,
    ratings: str | Path,
    movies: str | Path,
    user: int,
    k: int | None = None,
    device: str = "auto",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the user's top-rated movies, the model's top-k for the user), both with titles."""
    scorer = BatchScorer(model, device)
    k = scorer.info.rows_per_user(k)
    frame = read_ratings(ratings).filter(pl.col("user_id") == user)
    if frame.height == 0:
        raise InputError(f"{ratings}: user {user} has no ratings")
    vectors = build_user_vectors(frame, scorer.info.items)
    if vectors.users.ids.size == 0:
        raise InputError(f"user {user} rated no item the model knows")
    recs = score_users(scorer, vectors, batch_size=1, k=k)
    titles = read_movies(movies)
    rated = (
        frame.sort(["rating", "timestamp"], descending=True)
        .head(10)
        .join(titles, on="item_id", how="left", maintain_order="left")
    )
    untitled = recs.filter(~pl.col("item_id").is_in(titles["item_id"].implode()))
    if untitled.height:
        raise InputError(
            f"{movies}: no title for recommended item {untitled['item_id'][0]} "
            f"({untitled.height} of {recs.height}): the model and the movies file are of "
            "different data"
        )
    return rated, recs.join(titles, on="item_id", how="left", maintain_order="left")
