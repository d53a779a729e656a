"""The `aerec` command group: describe, synth, fetch, show-recs and the three stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import polars as pl

from aerec import __version__
from aerec.clikit import (
    batch_size_option,
    device_option,
    fallback_option,
    gates_options,
    logging_options,
    metrics_file_option,
    min_agreement_option,
    model_option,
    parts_option,
    ratings_option,
    run,
)
from aerec.contracts import (
    CHECKPOINT_CONFIG,
    CURRENT_LINK,
    EXIT_UNHEALTHY,
    RECS_META,
    RETAIN_MINUTES,
    SCORE_MEANINGS,
    STALE_HOURS,
    STALE_MODEL_HOURS,
    TABLE_DIR,
)
from aerec.data.fetch import GROUPLENS_URL, RELEASES, fetch_release
from aerec.data.layouts import names_help
from aerec.data.readers import read_movies, read_ratings
from aerec.data.split import load_split
from aerec.data.stats import describe_ratings, format_description
from aerec.data.synth import SynthConfig, write_synthetic
from aerec.errors import file_error, require
from aerec.score.engines import engine_options
from aerec.score.job import Engine, Gates, ScoreRequest
from aerec.train.presets import PRESETS


@click.group(name="aerec")
@click.version_option(__version__, prog_name="aerec")
@logging_options
def group() -> None:
    """aerec: a deep-autoencoder movie recommender run as a nightly batch job."""


@group.command()
@logging_options
@ratings_option
@click.option("--split", "spec", help="Also describe each side of this split SPEC.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of a random split.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def describe(ratings: str, spec: str | None, seed: int, as_json: bool) -> None:
    """Descriptive statistics of a ratings file, and of each side of a split."""
    report: dict[str, Any] = describe_ratings(read_ratings(ratings))
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
        click.echo(format_description(f"train ({spec})", report["train"]))
        click.echo(format_description(f"test ({spec})", report["test"]))
        dropped = report["dropped"]
        click.echo(
            f"dropped from test: {dropped['total']:,} ratings "
            f"({dropped['cold_user']:,} of users and {dropped['cold_item']:,} of items "
            "absent from train)"
        )


@group.command()
@logging_options
@click.option("--users", required=True, type=click.IntRange(min=1), help="Users to generate.")
@click.option("--items", required=True, type=click.IntRange(min=1), help="Items to generate.")
@click.option(
    "--ratings",
    required=True,
    type=click.IntRange(min=1),
    help="Ratings to generate (at most users x items).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the generator.")
@click.option("--half-stars", is_flag=True, help="Ratings in 0.5 steps, as in ml-latest.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help=f"Ratings file; the layout follows the name: {names_help()}.",
)
def synth(users: int, items: int, ratings: int, seed: int, half_stars: bool, out: str) -> None:
    """Generate MovieLens-like ratings and movies (written beside the ratings)."""
    config = SynthConfig(
        users=users, items=items, ratings=ratings, seed=seed, half_stars=half_stars
    )
    ratings_path, movies_path = write_synthetic(config, out)
    click.echo(f"wrote {ratings_path} and {movies_path}")


@group.command()
@logging_options
@click.argument("name", type=click.Choice(sorted(RELEASES)))
@click.option(
    "--dest",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to unpack into (the release lands in DEST/NAME).",
)
@click.option("--base-url", default=GROUPLENS_URL, show_default=True, help="Mirror to use.")
def fetch(name: str, dest: str, base_url: str) -> None:
    """Download a MovieLens release, verify its checksum and unpack it."""
    click.echo(str(fetch_release(name, dest, base_url)))


@group.command()
@logging_options
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(file_okay=False),
    help="Checkpoint directory written by train-model.",
)
@ratings_option
@click.option(
    "--split",
    "spec",
    help="The split the model was trained on (default: the one its config.json records).",
)
@click.option(
    "--seed",
    type=int,
    help="Seed of a random split (default: the one its config.json records).",
)
@click.option(
    "--k", default=10, show_default=True, type=click.IntRange(min=1), help="Top-k cut-off."
)
@click.option("--no-baselines", is_flag=True, help="Skip the same-run baselines.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(
    checkpoint: str,
    ratings: str,
    spec: str | None,
    seed: int | None,
    k: int,
    no_baselines: bool,
    as_json: bool,
) -> None:
    """Rating and top-k metrics of a checkpoint and the baselines on a held-out split."""
    require("torch", "train")
    from aerec.train.pipeline import evaluate_checkpoint, format_metrics

    metrics = evaluate_checkpoint(checkpoint, ratings, spec, seed, k, not no_baselines)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    config = json.loads((Path(checkpoint) / CHECKPOINT_CONFIG).read_text(encoding="utf-8"))
    click.echo(format_metrics(metrics, k, str(config.get("preset", "model"))))


@group.command()
@logging_options
@model_option
@ratings_option
@click.option(
    "--movies",
    required=True,
    type=click.Path(dir_okay=False),
    help="u.item, movies.dat or movies.csv",
)
@click.option("--user", required=True, type=int, help="The user id to recommend for.")
@click.option("--k", type=click.IntRange(min=1), help="How many (at most the model's k).")
@device_option
def recommend(model: str, ratings: str, movies: str, user: int, k: int | None, device: str) -> None:
    """One user's highest-rated movies and top recommendations, with titles and genres."""
    from aerec.score.recommend import recommend_user

    rated, recs = recommend_user(model, ratings, movies, user, k, device)
    click.echo(f"user {user} rated highly:")
    for row in rated.iter_rows(named=True):
        click.echo(f"  {row['rating']:>4g}  {row['title'] or row['item_id']}  [{row['genres']}]")
    click.echo(f"\nrecommended for user {user}:")
    for row in recs.iter_rows(named=True):
        click.echo(
            f"  {row['rank']:>3}. {row['title'] or row['item_id']}  [{row['genres']}]"
            f"  (score {row['score']:.2f})"
        )


@group.command()
@logging_options
@model_option
@ratings_option
@click.option(
    "--out-dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Publishes each run as DIR/runs/<stamp>/ (the table in recs/, manifest.json, "
    "_SUCCESS) and points DIR/current at it; read DIR/current/recs/*.parquet.",
)
@click.option("--k", type=click.IntRange(min=1), help="Rows per user (at most the model's k).")
@click.option(
    "--keep",
    default=7,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many finished run directories to keep.",
)
@click.option(
    "--retain-minutes",
    default=RETAIN_MINUTES,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Keep a superseded run at least this long after it stopped being current, even "
    "past --keep, so a slow reader still on it can finish.",
)
@batch_size_option
@device_option
@gates_options
@fallback_option
@parts_option
@engine_options
@metrics_file_option
@click.option(
    "--incremental",
    is_flag=True,
    help="Rescore only users whose ratings changed since the published run, when the "
    "model is the same (either engine).",
)
def nightly(
    model: str,
    ratings: str,
    out_dir: str,
    k: int | None,
    keep: int,
    retain_minutes: float,
    batch_size: int | None,
    device: str,
    gates: Gates,
    no_fallback: bool,
    parts: int | None,
    engine: Engine,
    metrics_file: str | None,
    incremental: bool,
) -> None:
    """Score under a lock into a dated run directory, then publish it atomically."""
    from aerec.jobs.metrics import with_metrics
    from aerec.jobs.nightly import Retention
    from aerec.jobs.nightly import nightly as run_nightly

    request = ScoreRequest(
        model=Path(model),
        ratings=Path(ratings),
        k=k,
        batch_size=batch_size,
        device=device,
        gates=gates,
        fallback=not no_fallback,
    )
    retention = Retention(keep, retain_minutes)
    with_metrics(
        _path(metrics_file),
        "nightly",
        lambda: run_nightly(request, out_dir, engine, parts, retention, incremental),
    )


@group.command()
@logging_options
@ratings_option
@click.option(
    "--model-dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Holds versions/, the current link (model.onnx and checkpoint/ through it) and "
    "candidates/.",
)
@click.option(
    "--split",
    default="user-temporal:0.2",
    show_default=True,
    help="How the candidate is trained and judged: its train side trains it, its held-out "
    "side is the gate's slice (random:F, temporal:Q, user-temporal:F, files:TRAIN,TEST).",
)
@click.option(
    "--preset",
    default="default",
    show_default=True,
    type=click.Choice(sorted(PRESETS)),
    help="The candidate's model and optimiser preset.",
)
@click.option(
    "--tolerance",
    type=float,
    help="How much lower the candidate's held-out NDCG@k may be and still be promoted "
    "(default: 2 standard errors of the paired difference).",
)
@click.option(
    "--k",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows per user of the exported model, and the gate's NDCG cut-off.",
)
@click.option(
    "--keep",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many versions and candidates to keep.",
)
@click.option(
    "--no-refit",
    is_flag=True,
    help="Promote the gated candidate itself instead of its refit on every rating.",
)
@min_agreement_option
@device_option
@metrics_file_option
def retrain(
    ratings: str,
    model_dir: str,
    split: str,
    preset: str,
    tolerance: float | None,
    k: int,
    keep: int,
    no_refit: bool,
    min_agreement: float,
    device: str,
    metrics_file: str | None,
) -> None:
    """Train and export a candidate model; promote it only if it passes the quality gate."""
    require("torch", "train")
    from aerec.jobs.retrain import RetrainOptions
    from aerec.jobs.retrain import retrain as run_retrain

    options = RetrainOptions(
        split,
        preset,
        tolerance,
        k,
        device=device,
        keep=keep,
        refit=not no_refit,
        min_agreement=min_agreement,
    )
    from aerec.jobs.metrics import with_metrics

    outcome = with_metrics(
        _path(metrics_file), "retrain", lambda: run_retrain(ratings, model_dir, options)
    )
    click.echo(json.dumps(outcome, indent=2))


def _path(given: str | None) -> Path | None:
    return None if given is None else Path(given)


@group.command()
@logging_options
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--max-age-hours",
    type=click.FloatRange(min=0, min_open=True),
    help=f"How old the current run may be (default {STALE_HOURS:g} h; a model "
    f"directory's version: {STALE_MODEL_HOURS:g} h).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
def status(directory: str, max_age_hours: float | None, as_json: bool) -> None:
    """Say whether a published directory (aerec nightly) or a model directory (aerec
    retrain) is healthy: exit 0 healthy, 1 stale, nothing current or last attempt failed."""
    from aerec.jobs.status import directory_status, format_status

    report = directory_status(Path(directory), max_age_hours)
    click.echo(json.dumps(report, indent=2) if as_json else format_status(report))
    if not report["healthy"]:
        raise click.exceptions.Exit(EXIT_UNHEALTHY)


@group.command()
@logging_options
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The HTML page to write (replaced atomically); self-contained, the plots embedded.",
)
def report(directory: str, out: str) -> None:
    """Write one HTML page of plots about a published directory (item exposure, coverage
    and churn over the runs, scores) or a model directory (training curves, the gate);
    needs aerec[plot]."""
    from aerec.jobs.report import write_report

    click.echo(write_report(Path(directory), Path(out)))


def table_files(recs: Path) -> list[Path]:
    """The Parquet files of the table at `recs`: the file itself, a partitioned table's
    parts, or those of a published directory's current run."""
    if not recs.is_dir():
        return [recs]
    folder = recs / CURRENT_LINK if (recs / CURRENT_LINK).is_symlink() else recs
    parts = sorted((folder / TABLE_DIR).glob("*.parquet"))
    if not parts:
        raise file_error(recs, f"a directory without a table ({TABLE_DIR}/*.parquet)")
    return parts


@group.command("show-recs")
@logging_options
@click.option(
    "--recs",
    required=True,
    type=click.Path(),
    help="A recs table: a Parquet file, a partitioned table's directory (its recs/ parts), "
    "or an aerec nightly --out-dir (its current run).",
)
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
    files = table_files(Path(recs))
    try:
        table = pl.read_parquet(files).sort("user_id", "rank")
    except (OSError, pl.exceptions.PolarsError) as error:
        raise file_error(recs, f"cannot read ({str(error).splitlines()[0]})") from None
    shown = table["user_id"].unique(maintain_order=True).head(users).implode()
    sample = table.filter(pl.col("user_id").is_in(shown))
    if movies:
        titles = read_movies(movies)
        items = table.select(pl.col("item_id").unique())
        untitled = items.join(titles, on="item_id", how="anti").height
        if untitled:
            click.echo(
                f"aerec: warning: {movies}: no title for {untitled:,} of the table's "
                f"{items.height:,} items: the movies file may be of another data set",
                err=True,
            )
        sample = sample.join(titles, on="item_id", how="left").sort("user_id", "rank")
    click.echo(f"{recs}: {table.height:,} rows for {table['user_id'].n_unique():,} users")
    score = pl.read_parquet_metadata(files[0]).get(RECS_META["score"])
    click.echo(f"score: {SCORE_MEANINGS.get(score or '', 'not recorded (an older table)')}")
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
