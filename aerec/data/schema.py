"""The canonical frames every reader produces."""

from __future__ import annotations

import polars as pl

RATINGS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "item_id": pl.Int64(),
    "rating": pl.Float32(),
    "timestamp": pl.Int64(),
}
MOVIES_SCHEMA: dict[str, pl.DataType] = {
    "item_id": pl.Int64(),
    "title": pl.String(),
    "genres": pl.String(),  # '|'-separated, as in MovieLens
}
RATING_MIN = 0.5
RATING_MAX = 5.0

# The 19 genre flags of ML-100K's u.item, in file order (u.genre).
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
