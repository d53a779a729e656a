"""Health figures against an independent computation from the written table, churn
against the table replaced, and the health gates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import score_table
from test_incremental import changed_ratings

from aerec.contracts import RECS_SCHEMA
from aerec.data.idmap import IdMap
from aerec.errors import InputError
from aerec.io.tally import Tally
from aerec.score.health import Replaced, gini, health_figures
from aerec.score.session import open_session


def test_gini_of_known_exposures() -> None:
    assert gini(np.array([3, 3, 3, 3])) == 0.0
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)
    assert gini(np.array([1, 2, 3, 4])) == pytest.approx(0.25)


def independent_figures(table: pl.DataFrame, model: Path) -> dict[str, float]:
    """The health figures computed from the written rows with Polars and numpy alone."""
    _, info, _ = open_session(model, "cpu")
    assert info.item_counts is not None
    catalogue = pl.DataFrame({"item_id": info.items.ids, "trained": info.item_counts})
    shown = table.group_by("item_id").len().sort("len", descending=True)
    exposure = (
        catalogue.join(shown, on="item_id", how="left").fill_null(0)["len"].to_numpy().astype(float)
    )
    pairs = np.abs(exposure[:, None] - exposure[None, :]).sum()
    return {
        "catalogue_coverage": shown.height / catalogue.height,
        "top_item_share": shown["len"][0] / table["user_id"].n_unique(),
        "top10_share": shown["len"].head(10).sum() / table.height,
        "gini": pairs / (2 * len(exposure) ** 2 * exposure.mean()),
        "mean_popularity": table.join(catalogue, on="item_id")["trained"].mean(),  # type: ignore[dict-item]
    }


def test_the_manifest_figures_match_an_independent_computation(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "recs.parquet"
    manifest = score_table(tiny_model, tiny_data[0], out, device="cpu")
    health = manifest["health"]
    table = pl.read_parquet(out)
    for name, value in independent_figures(table, tiny_model).items():
        assert health[name] == pytest.approx(value, abs=1e-6), name
    scores = table.filter(pl.col("source") == "model")["score"]
    assert health["score_quantiles"]["p50"] == pytest.approx(
        scores.quantile(0.5, "nearest"), abs=1e-6
    )
    assert health["score_quantiles"]["p99"] == pytest.approx(
        scores.quantile(0.99, "nearest"), abs=1e-6
    )
    assert health["sample_exact"] and health["sample_users"] == manifest["users"]
    assert health["churn"] is None  # nothing was replaced
    sample = pl.read_parquet(tmp_path / health["sample"])
    assert sample.drop("user_hash").sort("user_id", "rank").equals(table)


def user_lists(table: pl.DataFrame) -> dict[int, set[int]]:
    grouped = table.group_by("user_id").agg(pl.col("item_id"))
    return {int(u): set(items) for u, items in grouped.iter_rows()}


def test_churn_against_the_replaced_table_matches_the_two_tables(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "recs.parquet"
    first = score_table(tiny_model, tiny_data[0], out, device="cpu")
    old = user_lists(pl.read_parquet(out))
    ratings, _ = changed_ratings(tiny_data[0], tmp_path / "changed.csv")
    churn = score_table(tiny_model, ratings, out, device="cpu")["health"]["churn"]
    new = user_lists(pl.read_parquet(out))
    both = old.keys() & new.keys()
    jaccard = [len(old[u] & new[u]) / len(old[u] | new[u]) for u in both]
    assert churn == {
        "against": first["generated_at"],
        "same_model": True,
        "users_compared": len(both),
        "changed_share": pytest.approx(np.mean([j < 1 for j in jaccard]), abs=1e-6),
        "mean_jaccard": pytest.approx(np.mean(jaccard), abs=1e-6),
        "users_added": len(new.keys() - old.keys()),
        "users_gone": len(old.keys() - new.keys()),
        "exact": True,
    }
    assert 0 < churn["changed_share"] < 0.1  # two users' ratings and one new user


def test_sampled_churn_compares_the_same_users_on_both_sides(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """Samples of 30 users: the users compared are those both samples must hold."""
    first = pl.read_parquet(score_tiny(tiny_model, tiny_data[0], tmp_path / "a.parquet"))
    ratings, _ = changed_ratings(tiny_data[0], tmp_path / "changed.csv")
    second = pl.read_parquet(score_tiny(tiny_model, ratings, tmp_path / "b.parquet"))
    old, new = Tally(30), Tally(30)
    old.observe(first)
    new.observe(second)
    _, info, _ = open_session(tiny_model, "cpu")
    manifest = json.loads((tmp_path / "a.manifest.json").read_text())
    replaced = Replaced(manifest | {"health": {"sample_exact": False}}, old.sample())
    users = second["user_id"].n_unique()
    figures = health_figures(new, users, info.items, None, "x", info.version, 5, replaced)
    churn = figures["churn"]
    assert churn is not None and not churn["exact"]
    limit = min(int(old.sample()["user_hash"].max()), int(new.sample()["user_hash"].max()))
    below = [set(t.sample().filter(pl.col("user_hash") <= limit)["user_id"]) for t in (old, new)]
    assert churn["users_compared"] == len(below[0] & below[1]) > 10
    assert figures["sample_users"] == 30 and not figures["sample_exact"]


def score_tiny(model: Path, ratings: Path, out: Path) -> Path:
    score_table(model, ratings, out, device="cpu")
    return out


@pytest.fixture(scope="module")
def collapsed_model(tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The second seed's model (masked MSE on ratings): the same films first for all."""
    from aerec.export.onnx_export import export_onnx
    from aerec.train.pipeline import TrainOptions, train_model

    folder = tmp_path_factory.mktemp("collapsed")
    options = TrainOptions("seed-ml1m", epochs=20, seed=1, device="cpu", baselines=False)
    train_model(tiny_data[0], folder / "checkpoint", "user-temporal:0.2", options)
    export_onnx(folder / "checkpoint", folder / "model.onnx", k=5)
    return folder / "model.onnx"


def test_a_model_that_puts_the_same_items_first_for_everybody_is_refused(
    tiny_model: Path, collapsed_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "recs.parquet"
    healthy = score_table(tiny_model, tiny_data[0], out, device="cpu")
    published = out.read_bytes()
    with pytest.raises(InputError, match=r"of the lists, more than --max-item-share 80%"):
        score_table(collapsed_model, tiny_data[0], out, device="cpu")
    assert out.read_bytes() == published
    assert healthy["health"]["top_item_share"] <= 0.8
    forced = score_table(
        collapsed_model, tiny_data[0], out, device="cpu", max_item_share=1, min_coverage_ratio=0
    )
    assert forced["health"]["top_item_share"] > 0.8


def test_a_collapse_of_catalogue_coverage_is_refused(
    tiny_model: Path, collapsed_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "recs.parquet"
    before = score_table(tiny_model, tiny_data[0], out, device="cpu")["health"]
    with pytest.raises(InputError, match=r"below --min-coverage-ratio 0.5 of the published"):
        score_table(collapsed_model, tiny_data[0], out, device="cpu", max_item_share=1)
    assert json.loads((tmp_path / "recs.manifest.json").read_text())["health"] == before
    after = score_table(
        collapsed_model, tiny_data[0], out, device="cpu", max_item_share=1, min_coverage_ratio=0
    )
    assert after["health"]["catalogue_coverage"] < 0.5 * before["catalogue_coverage"]


def other_users(ratings: Path, out: Path) -> Path:
    """The same ratings with the user ids rotated: every user's ratings are another's."""
    frame = pl.read_csv(ratings)
    users = frame["userId"].unique().sort()
    shifted = users.shift(1, fill_value=users[-1])
    rotated = dict(zip(users.to_list(), shifted.to_list(), strict=True))
    frame.with_columns(pl.col("userId").replace_strict(rotated)).write_csv(out)
    return out


def test_churn_with_the_same_model_is_refused_above_max_churn(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "recs.parquet"
    score_table(tiny_model, tiny_data[0], out, device="cpu")
    published = out.read_bytes()
    rotated = other_users(tiny_data[0], tmp_path / "rotated.csv")
    with pytest.raises(InputError, match=r"lists changed with the same model, more than"):
        score_table(tiny_model, rotated, out, device="cpu")
    assert out.read_bytes() == published
    churn = score_table(tiny_model, rotated, out, device="cpu", max_churn=1.0)["health"]["churn"]
    assert churn["same_model"] and churn["changed_share"] > 0.5


def test_counts_are_not_needed_for_the_figures() -> None:
    """A model of an older aerec without item counts: no mean popularity, the rest."""
    tally = Tally()
    rows = [(1, 1, 5, 2.0, "model"), (1, 2, 6, 1.0, "model")]
    tally.observe(pl.DataFrame(rows, schema=RECS_SCHEMA, orient="row"))
    figures = health_figures(tally, 1, IdMap(np.array([5, 6, 7, 8])), None, "x", "v", 2, None)
    assert figures["mean_popularity"] is None
    assert figures["catalogue_coverage"] == 0.5 and figures["top_item_share"] == 1.0
    assert figures["top10_share"] == 1.0 and figures["gini"] == pytest.approx(0.5)
