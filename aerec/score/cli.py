"""score-all: every user's top-k recommendations into recs.parquet."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from aerec.clikit import (
    batch_size_option,
    device_option,
    fallback_option,
    gates_options,
    logging_options,
    model_option,
    parts_option,
    progress,
    run,
    scored_ratings_option,
)
from aerec.contracts import DEFAULT_PARTS
from aerec.io.sinks import DirectorySink, FileSink, RecsSink
from aerec.score.engines import engine_options
from aerec.score.job import Engine, Gates, ScoreRequest
from aerec.score.pipeline import score_all


def sink_for(out: str, parts: int | None, ratings: Path, engine: Engine) -> RecsSink:
    """What --out names: a partitioned directory (DIR/, an existing directory, --parts,
    or an engine that writes parts only), else one Parquet file."""
    if out.endswith("/") or Path(out).is_dir() or parts is not None or engine.parts_only:
        return DirectorySink(out, parts or engine.parts_for(ratings) or DEFAULT_PARTS)
    return FileSink(out)


@click.command("score-all")
@model_option
@scored_ratings_option
@click.option(
    "--out",
    required=True,
    type=click.Path(),
    help="Parquet file to publish (replaced atomically), or a new DIR/ for a partitioned "
    "table (DIR/recs/part-*.parquet, DIR/manifest.json, DIR/_SUCCESS).",
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
@gates_options
@fallback_option
@parts_option
@engine_options
@logging_options
def command(
    model: str,
    ratings: str,
    out: str,
    k: int | None,
    batch_size: int | None,
    device: str,
    users_file: str | None,
    gates: Gates,
    no_fallback: bool,
    parts: int | None,
    engine: Engine,
) -> None:
    """Score every user's rating vector through ONNX Runtime and publish the top-k table."""
    request = ScoreRequest(
        model=Path(model),
        ratings=Path(ratings),
        k=k,
        batch_size=batch_size,
        device=device,
        users=Path(users_file) if users_file is not None else None,
        gates=gates,
        fallback=not no_fallback,
    )
    sink = sink_for(out, parts, request.ratings, engine)
    score_all(request, sink, engine, functools.partial(progress, unit="chunk"))


def main() -> None:
    run(command)
