"""export-onnx: turn a checkpoint into a verified ONNX scoring graph."""

from __future__ import annotations

import click

from aerec.clikit import logging_options, run
from aerec.contracts import PRECISIONS
from aerec.errors import require


@click.command("export-onnx")
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(file_okay=False),
    help="Checkpoint directory written by train-model.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="ONNX file to write (replaced atomically).",
)
@click.option(
    "--k",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Recommendations per user computed inside the graph.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="fp16: the graph computes in float16 (for GPUs; slower on most CPUs). int8: the "
    "dense layers' weights stored as int8 and their inputs quantized per batch (faster "
    "on CPUs with VNNI). README has the measured speed and quality.",
)
@logging_options
def command(checkpoint: str, out: str, k: int, precision: str) -> None:
    """Export the scoring graph (autoencoder, mask rated items, TopK) and verify it."""
    require("torch", "train")
    from aerec.export.onnx_export import export_onnx

    export_onnx(checkpoint, out, k, precision)


def main() -> None:
    run(command)
