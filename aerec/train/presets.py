"""Named model and optimiser presets for --preset."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Everything but n_items: the layer sizes and optimiser settings of a model family."""

    hidden: tuple[int, ...]
    activation: str
    code_dropout: float
    input_dropout: float
    lr: float
    batch_size: int
    epochs: int
    weight_decay: float
    source: str


PRESETS = {
    "default": Preset(
        hidden=(256, 128),
        activation="selu",
        code_dropout=0.5,
        input_dropout=0.0,
        lr=1e-3,
        batch_size=64,
        epochs=30,
        weight_decay=1e-5,
        source="aerec: a small SELU autoencoder with dropout on the code",
    ),
}
