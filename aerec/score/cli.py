"""score-all: every user's top-k recommendations into recs.parquet."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from aerec.clikit import (
    batch_size_option,
    device_option,
    engine_options,
    max_unknown_option,
    min_agreement_option,
    min_rows_option,
    model_option,
    progress,
    ratings_option,
    ray_options,
    run,
    setup_logging,
    verbose_option,
)
from aerec.contracts import DEFAULT_PARTS
from aerec.score.dataset import score_dataset
from aerec.score.pipeline import score_all


@click.command("score-all")
@model_option
@ratings_option
@click.option(
    "--out",
    required=True,
    type=click.Path(),
    help="Parquet file to publish (replaced atomically), or DIR/ for a partitioned table "
    "published as DIR/current/recs/part-*.parquet.",
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
@min_agreement_option
@min_rows_option
@engine_options
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
    min_agreement: float,
    min_rows_fraction: float,
    engine: str,
    parts: int | None,
    ray_address: str | None,
    ray_concurrency: int | None,
    ray_num_cpus: float,
    ray_num_gpus: float,
    verbose: bool,
) -> None:
    """Score every user's rating vector through ONNX Runtime and publish the top-k table."""
    setup_logging(verbose)
    ray = ray_options(engine, ray_address, ray_concurrency, ray_num_cpus, ray_num_gpus)
    if out.endswith("/") or Path(out).is_dir() or parts is not None or ray is not None:
        score_dataset(
            model,
            ratings,
            out,
            k=k,
            keep=2,  # the published run and the one before it; no retention by age
            retain_minutes=0,
            batch_size=batch_size,
            device=device,
            users=users_file,
            max_unknown=max_unknown,
            min_agreement=min_agreement,
            min_rows_fraction=min_rows_fraction,
            parts=parts or (None if ray else DEFAULT_PARTS),
            engine=engine,
            ray=ray,
        )
        return
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
        min_agreement=min_agreement,
        min_rows_fraction=min_rows_fraction,
    )


def main() -> None:
    run(command)
