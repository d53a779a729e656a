"""A table's health figures, from the tally its writers kept, and the health gate.

The figures (contracts.HealthRecord, README "Health figures") describe what users are
shown: how much of the catalogue the lists cover, how concentrated they are on a few
items, how popular those items were in the model's training data, the model's score
quantiles, and against the table this one replaces, how many users' lists changed.
Churn compares the two tables' samples (aerec.io.tally): the same users by hash.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from aerec.contracts import (
    HEALTH_MIN_USERS,
    SCORE_QUANTILES,
    ChurnRecord,
    HealthRecord,
    Manifest,
)
from aerec.data.idmap import IdMap
from aerec.errors import GateRefused
from aerec.io.tally import Tally
from aerec.score.job import Gates

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replaced:
    """The published table a run replaces: its manifest and its health sample."""

    manifest: Manifest
    sample: pl.DataFrame | None  # None: it has none (an older aerec) or it is unreadable

    @classmethod
    def read(cls, manifest_path: Path | None) -> Replaced | None:
        """The table whose manifest is `manifest_path` (None: no such file)."""
        if manifest_path is None or not manifest_path.is_file():
            return None
        try:
            manifest: Manifest = json.loads(manifest_path.read_text())
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            log.warning(
                "%s: unreadable manifest, row and health gates skipped (%s)", manifest_path, error
            )
            return None
        name = manifest.get("health", {}).get("sample")
        if not name:
            return cls(manifest, None)
        try:
            return cls(manifest, pl.read_parquet(manifest_path.parent / name))
        except (OSError, pl.exceptions.PolarsError) as error:
            log.warning("%s: unreadable health sample, churn not computed (%s)", name, error)
            return cls(manifest, None)

    def complete(self) -> bool:
        health = self.manifest.get("health")
        return bool(health and health.get("sample_exact"))


def health_figures(
    tally: Tally,
    users: int,
    catalogue: IdMap,
    item_counts: np.ndarray | None,
    sample_file: str,
    model_version: str,
    k: int,
    replaced: Replaced | None,
) -> HealthRecord:
    """The figures of a table of `users` users whose rows `tally` counted; `catalogue`
    is the model's items, `item_counts` their training rating counts (aligned)."""
    items, counts = tally.exposure()
    exposure = np.zeros(len(catalogue), np.int64)
    position = catalogue.index(items)
    known = position >= 0
    np.add.at(exposure, position[known], counts[known])
    top = np.sort(counts)[::-1]
    sample = tally.sample()
    scores = sample.filter(pl.col("source") == "model")["score"]
    churn = None
    if replaced is not None and replaced.sample is not None:
        churn = _churn(sample, tally.sample_is_complete(), users, replaced, model_version, k)
    return HealthRecord(
        model_users=tally.users,
        catalogue_coverage=_round(np.count_nonzero(exposure) / max(len(catalogue), 1)),
        top_item=int(items[np.argmax(counts)]) if len(items) else 0,
        top_item_share=_round(top[0] / tally.users if tally.users and len(top) else 0.0),
        top10_share=_round(top[:10].sum() / max(tally.rows, 1)),
        gini=_round(gini(exposure)),
        mean_popularity=None
        if item_counts is None
        else _round(float(exposure @ item_counts.astype(np.float64)) / max(tally.rows, 1)),
        score_quantiles={
            f"p{round(q * 100):02d}": _round(float(scores.quantile(q, "nearest") or 0.0))
            for q in SCORE_QUANTILES
        }
        if scores.len()
        else {},
        sample=sample_file,
        sample_users=sample["user_id"].n_unique(),
        sample_exact=tally.sample_is_complete(),
        churn=churn,
    )


def describe_health(health: HealthRecord) -> str:
    """The figures an operator reads first, in one line."""
    line = (
        f"catalogue coverage {health['catalogue_coverage']:.1%}, item {health['top_item']} "
        f"in {health['top_item_share']:.0%} of the lists, top-10 items {health['top10_share']:.0%} "
        f"of the rows, Gini {health['gini']:.2f}"
    )
    churn = health["churn"]
    if churn is not None:
        line += (
            f"; against {churn['against']}: {churn['changed_share']:.0%} of the users' "
            f"lists changed, {churn['users_added']} users added, {churn['users_gone']} gone"
        )
    return line


def gini(exposure: np.ndarray) -> float:
    """The Gini index of the counts (0: every item shown equally; near 1: one item)."""
    values = np.sort(exposure.astype(np.float64))
    n, total = len(values), values.sum()
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * values).sum()) / (n * total) - (n + 1) / n)


def _churn(
    sample: pl.DataFrame, exact: bool, users: int, replaced: Replaced, model_version: str, k: int
) -> ChurnRecord:
    """The samples compared below the hash both hold every user under."""
    assert replaced.sample is not None
    before = replaced.sample
    limit = min(_hash_limit(sample, exact), _hash_limit(before, replaced.complete()))
    new = _lists(sample, limit)
    old = _lists(before, limit)
    both = new.join(old, on="user_id", suffix="_old")
    shared = both.select(
        pl.col("items").list.set_intersection("items_old").list.len().alias("shared"),
        pl.col("items").list.set_union("items_old").list.len().alias("union"),
    )
    jaccard = (shared["shared"] / shared["union"]).to_numpy()
    added = new.height - both.height
    gone = old.height - both.height
    users_before = int(replaced.manifest.get("users", old.height))
    return ChurnRecord(
        against=str(replaced.manifest.get("run", replaced.manifest.get("generated_at", ""))),
        same_model=replaced.manifest.get("model_version") == model_version
        and replaced.manifest.get("k") == k,
        users_compared=both.height,
        changed_share=_round(float((jaccard < 1).mean()) if both.height else 0.0),
        mean_jaccard=_round(float(jaccard.mean()) if both.height else 1.0),
        users_added=round(added / new.height * users) if new.height else 0,
        users_gone=round(gone / old.height * users_before) if old.height else 0,
        exact=exact and replaced.complete(),
    )


def _hash_limit(sample: pl.DataFrame, complete: bool) -> int:
    """Every user of the table hashed at most this is in the sample."""
    if complete or sample.height == 0:
        return 2**64 - 1
    return int(sample["user_hash"].max())  # type: ignore[arg-type]


def _lists(sample: pl.DataFrame, limit: int) -> pl.DataFrame:
    """Each sampled user's set of items, for the users hashed at most `limit`."""
    kept = sample.filter(pl.col("user_hash") <= limit)
    return kept.group_by("user_id").agg(pl.col("item_id").alias("items"))


def _round(value: float) -> float:
    return round(float(value), 6)


def check_health(out: Path, health: HealthRecord, gates: Gates, replaced: Replaced | None) -> None:
    """Refuse (exit 2, nothing published) a table the health gates do not pass; the
    item-share gate judges only tables whose model ranked HEALTH_MIN_USERS lists or more."""
    share = health["top_item_share"]
    if health["model_users"] >= HEALTH_MIN_USERS and share > gates.max_item_share:
        raise GateRefused(
            "max_item_share",
            f"{out}: item {health['top_item']} is in {share:.0%} of the lists, more than "
            f"--max-item-share {gates.max_item_share:.0%}; nothing published",
        )
    published = None
    if replaced is not None and "health" in replaced.manifest:
        published = replaced.manifest["health"].get("catalogue_coverage")
    coverage = health["catalogue_coverage"]
    if published and coverage < gates.min_coverage_ratio * published:
        raise GateRefused(
            "min_coverage_ratio",
            f"{out}: catalogue coverage {coverage:.1%}, below --min-coverage-ratio "
            f"{gates.min_coverage_ratio:g} of the published table's {published:.1%}; "
            "nothing published",
        )
    churn = health["churn"]
    if churn is not None and churn["same_model"] and churn["changed_share"] > gates.max_churn:
        raise GateRefused(
            "max_churn",
            f"{out}: {churn['changed_share']:.0%} of the users' lists changed with the same "
            f"model, more than --max-churn {gates.max_churn:.0%}; nothing published",
        )
