"""score-all: every user's top-k recommendations into recs.parquet."""

from __future__ import annotations

import functools

import click

from aerec.clikit import (
    batch_size_option,
    device_option,
    max_unknown_option,
    min_rows_option,
    model_option,
    progress,
    ratings_option,
    run,
    setup_logging,
    verbose_option,
)
from aerec.score.pipeline import score_all


@click.command("score-all")
@model_option
@ratings_option
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Parquet table to publish (replaced atomically).",
)
@click.option("--k", type=click.IntRange(min=1), help="Rows per user (at most the model's k).")
@batch_size_option
@device_option
@click.option(
    "--users",
    "users_file",
    type=click.Path(dir_okay=False),
    help="Score only the user ids listed in this file, one per line.",
)
@max_unknown_option
@min_rows_option
@verbose_option
def command(
    model: str,
    ratings: str,
    out: str,
    k: int | None,
    batch_size: int,
    device: str,
    users_file: str | None,
    max_unknown: float,
    min_rows_fraction: float,
    verbose: bool,
) -> None:
    """Score every user's rating vector through ONNX Runtime and publish the top-k table."""
    setup_logging(verbose)
    score_all(
        model,
        ratings,
        out,
        k=k,
        batch_size=batch_size,
        device=device,
        users=users_file,
        progress=functools.partial(progress, unit="chunk"),
        max_unknown=max_unknown,
        min_rows_fraction=min_rows_fraction,
    )


def main() -> None:
    run(command)
