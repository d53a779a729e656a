"""train-model: train an autoencoder on a ratings file and write a checkpoint directory."""

from __future__ import annotations

import click

from aerec.clikit import (
    device_option,
    logging_options,
    progress,
    ratings_option,
    run,
)
from aerec.errors import require
from aerec.train.presets import PRESETS


@click.command("train-model")
@ratings_option
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Checkpoint directory to write (replaced atomically).",
)
@click.option(
    "--split",
    default="user-temporal:0.2",
    show_default=True,
    help="random:F, temporal:Q, user-temporal:F, files:TRAIN,TEST, or none (no test side: "
    "epochs chosen on a validation slice, then refit on every rating).",
)
@click.option(
    "--preset",
    default="default",
    show_default=True,
    type=click.Choice(sorted(PRESETS)),
    help='Model and optimiser preset (README "Models").',
)
@click.option("--epochs", type=click.IntRange(min=1), help="Override the preset's epoch count.")
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the split, the validation slice and the weights.",
)
@device_option
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16"]),
    help="Training arithmetic: bf16 autocasts the products to bfloat16 (the loss stays "
    "float32); auto, the default, does so on a GPU that has bfloat16 and not on a CPU.",
)
@click.option("--no-baselines", is_flag=True, help="Skip the same-run baselines.")
@logging_options
def command(
    ratings: str,
    out: str,
    split: str,
    preset: str,
    epochs: int | None,
    seed: int,
    device: str,
    precision: str | None,
    no_baselines: bool,
) -> None:
    """Train the autoencoder, evaluate it on the held-out split and save a checkpoint."""
    require("torch", "train")
    from aerec.train.pipeline import TrainOptions, format_metrics, train_model

    options = TrainOptions(preset, epochs, seed, device, not no_baselines, progress, precision)
    metrics = train_model(ratings, out, split, options)
    click.echo(format_metrics(metrics, name=preset))


def main() -> None:
    run(command)
