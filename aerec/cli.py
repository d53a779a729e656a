"""The `aerec` command group: describe, synth, fetch, show-recs and the three stages."""

from __future__ import annotations

import json

import click
import polars as pl

from aerec import __version__
from aerec.clikit import run, setup_logging
from aerec.data.fetch import GROUPLENS_URL, RELEASES, fetch_release
from aerec.data.readers import read_movies, read_ratings
from aerec.data.split import load_split
from aerec.data.stats import describe_ratings, format_description
from aerec.data.synth import SynthConfig, write_synthetic
from aerec.errors import file_error


@click.group(name="aerec")
@click.version_option(__version__, prog_name="aerec")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def group(verbose: bool) -> None:
    """aerec: a deep-autoencoder movie recommender run as a nightly batch job."""
    setup_logging(verbose)


@group.command()
@click.option("--ratings", required=True, type=click.Path(dir_okay=False))
@click.option("--split", "spec", help="Also describe each side of this split SPEC.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of a random split.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def describe(ratings: str, spec: str | None, seed: int, as_json: bool) -> None:
    """Descriptive statistics of a ratings file, and of each side of a split."""
    report: dict[str, object] = describe_ratings(read_ratings(ratings))
    if spec:
        split = load_split(ratings, spec, seed)
        report["split"] = spec
        report["train"] = describe_ratings(split.train)
        report["test"] = describe_ratings(split.test)
        report["dropped"] = split.stats()["dropped"]
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(format_description(ratings, report))
    if spec:
        click.echo(format_description(f"train ({spec})", report["train"]))  # type: ignore[arg-type]
        click.echo(format_description(f"test ({spec})", report["test"]))  # type: ignore[arg-type]
        dropped = report["dropped"]
        click.echo(
            f"dropped from test: {dropped['total']:,} ratings "  # type: ignore[index]
            f"({dropped['cold_user']:,} of users and {dropped['cold_item']:,} of items "  # type: ignore[index]
            "absent from train)"
        )


@group.command()
@click.option("--users", required=True, type=click.IntRange(min=1))
@click.option("--items", required=True, type=click.IntRange(min=1))
@click.option("--ratings", required=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--half-stars", is_flag=True, help="Ratings in 0.5 steps, as in ml-latest.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Ratings file; the layout follows the name: .parquet, .csv (canonical), "
    "ratings.csv (ml-latest), .dat (ML-1M), .data (ML-100K).",
)
def synth(users: int, items: int, ratings: int, seed: int, half_stars: bool, out: str) -> None:
    """Generate MovieLens-like ratings and movies (written beside the ratings)."""
    config = SynthConfig(
        users=users, items=items, ratings=ratings, seed=seed, half_stars=half_stars
    )
    ratings_path, movies_path = write_synthetic(config, out)
    click.echo(f"wrote {ratings_path} and {movies_path}")


@group.command()
@click.argument("name", type=click.Choice(sorted(RELEASES)))
@click.option("--dest", required=True, type=click.Path(file_okay=False))
@click.option("--base-url", default=GROUPLENS_URL, show_default=True, help="Mirror to use.")
def fetch(name: str, dest: str, base_url: str) -> None:
    """Download a MovieLens release, verify its checksum and unpack it."""
    click.echo(str(fetch_release(name, dest, base_url)))


@group.command()
@click.option("--checkpoint", required=True, type=click.Path(file_okay=False))
@click.option("--ratings", required=True, type=click.Path(dir_okay=False))
@click.option("--split", "spec", required=True, help="The split the model was trained on.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--k", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--no-baselines", is_flag=True, help="Skip the same-run baselines.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(
    checkpoint: str, ratings: str, spec: str, seed: int, k: int, no_baselines: bool, as_json: bool
) -> None:
    """Rating and top-k metrics of a checkpoint and the baselines on a held-out split."""
    from aerec.train.pipeline import evaluate_checkpoint, format_metrics

    metrics = evaluate_checkpoint(checkpoint, ratings, spec, seed, k, not no_baselines)
    click.echo(json.dumps(metrics, indent=2) if as_json else format_metrics(metrics, k))


@group.command("show-recs")
@click.option("--recs", required=True, type=click.Path(dir_okay=False))
@click.option("--movies", type=click.Path(dir_okay=False), help="u.item, movies.dat or .csv")
@click.option(
    "--users",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many users to show.",
)
def show_recs(recs: str, movies: str | None, users: int) -> None:
    """Print a readable sample of a recommendations table."""
    try:
        table = pl.read_parquet(recs)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise file_error(recs, f"cannot read ({str(error).splitlines()[0]})") from None
    shown = table["user_id"].unique(maintain_order=True).head(users).implode()
    sample = table.filter(pl.col("user_id").is_in(shown))
    if movies:
        sample = sample.join(read_movies(movies), on="item_id", how="left").sort("user_id", "rank")
    click.echo(f"{recs}: {table.height:,} rows for {table['user_id'].n_unique():,} users")
    for (user,), rows in sample.group_by("user_id", maintain_order=True):
        click.echo(f"\nuser {user}:")
        for row in rows.iter_rows(named=True):
            title = row.get("title") or f"item {row['item_id']}"
            genres = f"  [{row['genres']}]" if row.get("genres") else ""
            click.echo(f"  {row['rank']:>3}. {title}{genres}  (score {row['score']:.2f})")


def _add_stage_commands() -> None:
    from aerec.export.cli import command as export_command
    from aerec.score.cli import command as score_command
    from aerec.train.cli import command as train_command

    for stage in (train_command, export_command, score_command):
        group.add_command(stage)


_add_stage_commands()


def main() -> None:
    run(group)
