"""A deterministic generator of MovieLens-like data: the embedded default and the test fixture.

Item popularity and user activity follow power laws; a rating is a global mean plus user
and item biases plus a dot product of latent tastes plus noise, rounded to whole or half
stars. Items get titles, years and genres tied to their latent factors, and every rating a
timestamp inside its user's active period.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from aerec.data.layouts import layout_for_name
from aerec.data.schema import ML100K_GENRES, RATINGS_SCHEMA
from aerec.errors import InputError
from aerec.io.atomic import atomic_path

log = logging.getLogger(__name__)

_GENRES = (
    "Action",
    "Comedy",
    "Drama",
    "Romance",
    "Thriller",
    "Sci-Fi",
    "Animation",
    "Documentary",
    "Horror",
    "Adventure",
    "Crime",
    "Musical",
)
_ADJECTIVES = (
    "Silent",
    "Last",
    "Golden",
    "Broken",
    "Hidden",
    "Crimson",
    "Distant",
    "Wild",
    "Frozen",
    "Secret",
    "Electric",
    "Midnight",
    "Lonely",
    "Endless",
    "Savage",
    "Gentle",
    "Burning",
    "Velvet",
    "Iron",
    "Paper",
)
_NOUNS = (
    "Harbor",
    "Summer",
    "Kingdom",
    "River",
    "Promise",
    "Detective",
    "Garden",
    "Storm",
    "Machine",
    "Letter",
    "Frontier",
    "Orchestra",
    "Island",
    "Mirror",
    "Station",
    "Voyage",
    "Empire",
    "Circus",
    "Lighthouse",
    "Planet",
)
_EPOCH_START = 946_684_800  # 2000-01-01
_EPOCH_END = 1_577_836_800  # 2020-01-01
_CHUNK = 4_000_000
TASTE_SHARE = 0.6  # share of a user's ratings drawn from their taste cluster


@dataclass(frozen=True)
class SynthConfig:
    """Size and seed of a synthetic data set."""

    users: int
    items: int
    ratings: int
    seed: int = 0
    half_stars: bool = False
    factors: int = 8

    def check(self) -> None:
        if min(self.users, self.items, self.ratings) < 1:
            raise InputError("synth: --users, --items and --ratings must be positive")
        if self.ratings > 0.5 * self.users * self.items:
            raise InputError(
                f"synth: {self.ratings:,} ratings exceed half of the {self.users:,} x "
                f"{self.items:,} matrix; ask for fewer ratings or more users or items"
            )


def _power_law(n: int, exponent: float, offset: float, rng: np.random.Generator) -> np.ndarray:
    """Normalised power-law weights, assigned to positions in random order."""
    weights = (np.arange(n, dtype=np.float64) + offset) ** -exponent
    return rng.permutation(weights / weights.sum())


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy 2's hash-based unique is several times slower here)."""
    values.sort()
    keep = np.empty(values.size, dtype=bool)
    keep[:1] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _draw_items(
    users: np.ndarray,
    popularity: np.ndarray,
    user_cluster: np.ndarray,
    item_cluster: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One item per entry of `users`: from the user's taste cluster with probability
    TASTE_SHARE, else from the whole catalogue, popularity-weighted either way."""
    items = np.searchsorted(np.cumsum(popularity), rng.random(users.size) * popularity.sum())
    from_cluster = rng.random(users.size) < TASTE_SHARE
    for cluster in np.unique(item_cluster):
        members = np.flatnonzero(item_cluster == cluster)
        chosen = np.flatnonzero(from_cluster & (user_cluster[users] == cluster))
        weights = np.cumsum(popularity[members])
        picks = np.searchsorted(weights, rng.random(chosen.size) * weights[-1])
        items[chosen] = members[np.minimum(picks, members.size - 1)]
    return np.minimum(items, popularity.size - 1)


def _sample_pairs(
    cfg: SynthConfig, rng: np.random.Generator, user_factors: np.ndarray, item_factors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) index pairs, exactly cfg.ratings of them.

    Users mostly rate items of their taste cluster (the strongest of their first latent
    factors), so what a user rated carries signal, as in MovieLens.
    """
    popularity = _power_law(cfg.items, 1.0, 5.0, rng)
    activity = _power_law(cfg.users, 1.0, 10.0, rng)
    clusters = min(cfg.factors, len(_GENRES))
    user_cluster = np.argmax(user_factors[:, :clusters], axis=1)
    item_cluster = np.argmax(item_factors[:, :clusters], axis=1)
    cap = max(1, cfg.items // 2)
    keys = np.empty(0, dtype=np.int64)
    for _ in range(20):
        missing = cfg.ratings - keys.size
        if missing <= 0:
            break
        wanted = np.minimum(np.ceil(activity * missing * 1.25).astype(np.int64) + 1, cap)
        users = np.repeat(np.arange(cfg.users, dtype=np.int64), wanted)
        items = _draw_items(users, popularity, user_cluster, item_cluster, rng)
        keys = _sorted_unique(np.concatenate([keys, users * cfg.items + items]))
    else:
        raise InputError(f"synth: could not place {cfg.ratings:,} distinct ratings")
    keys = np.sort(rng.choice(keys, size=cfg.ratings, replace=False))
    return keys // cfg.items, keys % cfg.items


def _ratings(
    cfg: SynthConfig,
    users: np.ndarray,
    items: np.ndarray,
    rng: np.random.Generator,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
) -> np.ndarray:
    user_bias = rng.normal(0.0, 0.35, cfg.users).astype(np.float32)
    item_bias = rng.normal(0.0, 0.45, cfg.items).astype(np.float32)
    values = np.empty(users.size, dtype=np.float32)
    for start in range(0, users.size, _CHUNK):
        u, i = users[start : start + _CHUNK], items[start : start + _CHUNK]
        taste = np.einsum("nd,nd->n", user_factors[u], item_factors[i]) / np.sqrt(cfg.factors)
        noise = rng.normal(0.0, 0.55, u.size)
        values[start : start + _CHUNK] = 3.55 + user_bias[u] + item_bias[i] + 0.9 * taste + noise
    step = 2.0 if cfg.half_stars else 1.0
    low = 0.5 if cfg.half_stars else 1.0
    return np.clip(np.round(values * step) / step, low, 5.0).astype(np.float32)


def _timestamps(cfg: SynthConfig, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    start = rng.integers(_EPOCH_START, _EPOCH_END - 86_400, cfg.users)
    span = rng.exponential(200 * 86_400, cfg.users)
    stamps = start[users] + (rng.random(users.size) * span[users]).astype(np.int64)
    return np.minimum(stamps, _EPOCH_END)


def _movies(
    cfg: SynthConfig, ids: np.ndarray, item_factors: np.ndarray, rng: np.random.Generator
) -> pl.DataFrame:
    adjective = rng.integers(0, len(_ADJECTIVES), cfg.items)
    noun = rng.integers(0, len(_NOUNS), cfg.items)
    year = rng.integers(1930, 2020, cfg.items)
    main = np.argmax(item_factors[:, : min(cfg.factors, len(_GENRES))], axis=1)
    extra = rng.integers(0, len(_GENRES), cfg.items)
    has_extra = rng.random(cfg.items) < 0.5
    titles, genres = [], []
    for n in range(cfg.items):
        titles.append(f"The {_ADJECTIVES[adjective[n]]} {_NOUNS[noun[n]]} #{ids[n]} ({year[n]})")
        names = [_GENRES[main[n]]]
        if has_extra[n] and extra[n] != main[n]:
            names.append(_GENRES[extra[n]])
        genres.append("|".join(sorted(names, key=ML100K_GENRES.index)))
    return pl.DataFrame({"item_id": ids, "title": titles, "genres": genres})


def generate(cfg: SynthConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Canonical ratings and movies frames for the configuration, identical for a seed."""
    cfg.check()
    rng = np.random.default_rng(cfg.seed)
    item_ids = 1 + np.sort(rng.choice(2 * cfg.items, size=cfg.items, replace=False))
    item_factors = rng.normal(0.0, 1.0, (cfg.items, cfg.factors)).astype(np.float32)
    user_factors = rng.normal(0.0, 1.0, (cfg.users, cfg.factors)).astype(np.float32)
    users, items = _sample_pairs(cfg, rng, user_factors, item_factors)
    ratings = pl.DataFrame(
        {
            "user_id": users + 1,
            "item_id": item_ids[items],
            "rating": _ratings(cfg, users, items, rng, user_factors, item_factors),
            "timestamp": _timestamps(cfg, users, rng),
        },
        schema=RATINGS_SCHEMA,
    )
    return ratings, _movies(cfg, item_ids, item_factors, rng)


def write_ratings(frame: pl.DataFrame, path: Path) -> None:
    """Write canonical ratings in the layout the path's name asks for."""
    with atomic_path(path) as temporary:
        layout_for_name(path).write(frame, temporary)


def write_synthetic(cfg: SynthConfig, out: str | Path) -> tuple[Path, Path]:
    """Generate a data set and write its ratings to `out` and its movies beside them."""
    out = Path(out)
    layout = layout_for_name(out)  # fail on an unknown layout before the work
    ratings, movies = generate(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_ratings(ratings, out)
    movies_path = layout.write_movies(movies, out.parent)
    log.info(
        "wrote %d ratings to %s and %d movies to %s",
        ratings.height,
        out,
        movies.height,
        movies_path,
    )
    return out, movies_path
