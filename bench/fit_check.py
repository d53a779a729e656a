"""How alike the item popularity of ratings ranks with a model's training data, for
pairs that fit and pairs that do not: the figures that chose MIN_POPULARITY_AGREEMENT.

    .venv/bin/python bench/fit_check.py [--data ../shared/data]

Only counts are compared (the check needs no model): the "model" side is the training
ratings' count per item id, the other side the ratings a run would score. Spearman's
correlation over the items both rated, as aerec.data.stats.popularity_agreement computes it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from aerec.data.idmap import IdMap
from aerec.data.readers import read_ratings
from aerec.data.stats import popularity_agreement

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def counts(frame: pl.DataFrame, items: IdMap) -> np.ndarray:
    columns = items.index(frame["item_id"])
    return np.bincount(columns[columns >= 0], minlength=len(items))


def compare(name: str, trained: pl.DataFrame, scored: pl.DataFrame) -> None:
    items = IdMap.from_ids(trained["item_id"])
    known = float((items.index(scored["item_id"]) >= 0).mean())
    rho, shared = popularity_agreement(counts(trained, items), counts(scored, items))
    print(f"| {name} | {known:.0%} | {shared:,} | {rho:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    data = parser.parse_args().data
    small = read_ratings(data / "ml-latest-small" / "ratings.csv")
    full = read_ratings(data / "ml-100k" / "u.data")
    base, test = (read_ratings(data / "ml-100k" / name) for name in ("u1.base", "u1.test"))
    cut = small["timestamp"].quantile(0.9)
    older, newer = small.filter(pl.col("timestamp") <= cut), small.filter(pl.col("timestamp") > cut)
    ids = full["item_id"].unique().sort()
    shuffled_ids = ids.sample(fraction=1.0, shuffle=True, seed=0).to_list()
    permuted = dict(zip(ids.to_list(), shuffled_ids, strict=True))
    shuffled = full.with_columns(pl.col("item_id").replace_strict(permuted))
    print("| model trained on → ratings scored | ratings of known ids | shared items | Spearman |")
    print("| --- | --- | --- | --- |")
    compare("ML-100K u1.base → u.data (the nightly case: history + new)", base, full)
    compare("ML-100K u1.base → u1.test (new ratings only)", base, test)
    compare("ml-latest-small oldest 90% → all", older, small)
    compare("ml-latest-small oldest 90% → newest 10% only", older, newer)
    compare("ml-latest-small → ML-100K (another data set)", small, full)
    compare("ML-100K → ml-latest-small (another data set)", full, small)
    compare("ML-100K → ML-100K with item ids shuffled (a corrupt export)", full, shuffled)


if __name__ == "__main__":
    main()
