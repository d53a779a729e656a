"""Named model and optimiser presets for --preset, each with its source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aerec.train.config import ModelConfig, TrainConfig


@dataclass(frozen=True)
class Preset:
    """A model family's shape (all but its input width) and its optimiser settings."""

    model: dict[str, Any]
    train: TrainConfig
    source: str
    validation_fraction: float = 0.05
    members: int = 1  # above 1: an ensemble of models trained with consecutive seeds

    def model_config(self, n_inputs: int) -> ModelConfig:
        return ModelConfig(n_items=n_inputs, **self.model)


PRESETS: dict[str, Preset] = {
    "default": Preset(
        model={
            "hidden": [200],
            "activation": "tanh",
            "input_dropout": 0.7,
            "likelihood": "multinomial",
        },
        train=TrainConfig(epochs=150, batch_size=64, lr=1e-3, patience=15),
        source="Mult-DAE (Liang et al. 2018): multinomial likelihood over the rated set, "
        "dropout 0.7 on the input, one 200-unit tanh layer (chosen by validation NDCG@10)",
        validation_fraction=0.1,
    ),
    "seed-latest": Preset(
        model={"hidden": [512, 512, 1024], "activation": "selu"},
        train=TrainConfig(epochs=40, batch_size=128, lr=1e-3, patience=40),
        source="the first seed: input -> 512 -> 512 -> 1024 and back, Adam 1e-3, batch 128, "
        "40 epochs",
    ),
    "seed-ml1m": Preset(
        model={"hidden": [200, 100], "activation": "sigmoid"},
        train=TrainConfig(epochs=40, batch_size=128, lr=1e-3, patience=40),
        source="the second seed: input -> 200 -> 100 -> 200 -> input, sigmoid",
    ),
    "deeprec": Preset(
        model={
            "hidden": [512, 512, 1024],
            "activation": "selu",
            "code_dropout": 0.8,
            "tied": True,
        },
        train=TrainConfig(epochs=60, batch_size=128, lr=1e-3, refeed=True, patience=10),
        source="NVIDIA DeepRecommender (Kuchaiev & Ginsburg 2017): SELU, dropout 0.8 on the "
        "code, tied decoder, dense re-feeding",
    ),
    "autorec-item": Preset(
        model={
            "hidden": [500],
            "activation": "sigmoid",
            "output_activation": "identity",
            "item_based": True,
        },
        train=TrainConfig(epochs=300, batch_size=256, lr=1e-3, l2=1e-3, patience=20),
        source="I-AutoRec (Sedhain et al. 2015): item vectors, 500 sigmoid units, identity "
        "output, L2 on the weights; the mean of 5 models trained with different seeds",
        members=5,
    ),
}
