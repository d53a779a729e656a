"""Named model and optimiser presets for --preset, each with its source."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from aerec.errors import InputError
from aerec.train.config import ModelConfig, TrainConfig
from aerec.train.metrics import POSITIVE


@dataclass(frozen=True)
class Preset:
    """A model family's shape (all but its input width) and its optimiser settings."""

    kind: str  # a name in aerec.train.registry.KINDS
    model: dict[str, Any]
    train: TrainConfig
    source: str
    validation_fraction: float = 0.05
    members: int = 1  # above 1: an ensemble of models trained with consecutive seeds
    blend: tuple[str, ...] = ()  # presets whose rating predictions this one blends

    def changed(self, changes: dict[str, Any]) -> Preset:
        """This preset with "model.x", "train.x" and "members" settings replaced (a sweep's
        configuration)."""
        model = {k.removeprefix("model."): v for k, v in changes.items() if k.startswith("model.")}
        train = {k.removeprefix("train."): v for k, v in changes.items() if k.startswith("train.")}
        unknown = set(changes) - {f"model.{k}" for k in model} - {f"train.{k}" for k in train}
        if unknown - {"members"}:
            raise ValueError(
                f"settings {sorted(unknown - {'members'})}: expected model.x, train.x or members"
            )
        return replace(
            self,
            model={**self.model, **model},
            train=replace(self.train, **train),
            members=changes.get("members", self.members),
        )

    def model_config(self, n_inputs: int, positive_rating: float = POSITIVE) -> ModelConfig:
        """The model's config for `n_inputs` inputs and the data's positive threshold."""
        return ModelConfig(n_items=n_inputs, positive_rating=positive_rating, **self.model)


PRESETS: dict[str, Preset] = {
    "default": Preset(
        kind="mult-dae",
        model={
            "hidden": [200],
            "activation": "tanh",
            "input_dropout": 0.7,
            "below_positive_weight": 0.3,
        },
        train=TrainConfig(epochs=150, batch_size=128, lr=1e-3, patience=15),
        source="Mult-DAE (Liang et al. 2018) with items rated below the positive threshold "
        "weighted 0.3 in the multinomial likelihood: dropout 0.7 on the rated set, one "
        "200-unit tanh layer, batch 128 (chosen by validation NDCG@10: bench/ranking_sweep.py)",
        validation_fraction=0.1,
    ),
    "mult-vae": Preset(
        kind="mult-vae",
        model={
            "hidden": [600, 200],
            "activation": "tanh",
            "input_dropout": 0.5,
            "below_positive_weight": 0.3,
            "kl_cap": 0.5,
            "kl_anneal_steps": 200,
        },
        train=TrainConfig(epochs=200, batch_size=128, lr=1e-3, patience=20),
        source="Mult-VAE (Liang et al. 2018): the rated set through 600 tanh units to a "
        "200-dimensional Gaussian code and back, scored from the code's mean; dropout 0.5 on "
        "the input, items rated below the positive threshold weighted 0.3, the KL weight "
        "annealed linearly to 0.5 over 200 batches (chosen by validation NDCG@10: "
        "bench/vae_sweep.py)",
        validation_fraction=0.1,
    ),
    "recvae": Preset(
        kind="recvae",
        model={
            "hidden": [600, 200],
            "activation": "silu",
            "input_dropout": 0.5,
            "below_positive_weight": 0.3,
            "kl_gamma": 0.02,
            "encoder_passes": 3,
        },
        train=TrainConfig(epochs=100, batch_size=64, lr=1e-3, patience=10),
        source="RecVAE (Shenbin et al. 2020): the rated set through a 600-unit swish layer "
        "with layer norm to a 200-dimensional Gaussian code, one linear decoder layer; "
        "composite prior, KL weight 0.02 x the user's likelihood weight, items rated below "
        "the positive threshold weighted 0.3, 3 encoder passes per decoder pass, batch 64 "
        "(chosen by validation NDCG@10: bench/vae_sweep.py; the paper's five layers, "
        "0.005 and batch 500 scored lower on MovieLens 100K and latest-small)",
        validation_fraction=0.1,
    ),
    "seed-latest": Preset(
        kind="rating-ae",
        model={"hidden": [512, 512, 1024], "activation": "selu"},
        train=TrainConfig(epochs=40, batch_size=128, lr=1e-3, patience=40),
        source="the first seed: input -> 512 -> 512 -> 1024 and back, Adam 1e-3, batch 128, "
        "40 epochs",
    ),
    "seed-ml1m": Preset(
        kind="rating-ae",
        model={"hidden": [200, 100], "activation": "sigmoid"},
        train=TrainConfig(epochs=40, batch_size=128, lr=1e-3, patience=40),
        source="the second seed: input -> 200 -> 100 -> 200 -> input, sigmoid",
    ),
    "deeprec": Preset(
        kind="rating-ae",
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
        kind="item-autorec",
        model={"hidden": [500], "activation": "sigmoid", "output_activation": "identity"},
        train=TrainConfig(epochs=300, batch_size=256, lr=1e-3, l2=1e-3, patience=20),
        source="I-AutoRec (Sedhain et al. 2015): item vectors, 500 sigmoid units, identity "
        "output, L2 on the weights; the mean of 5 models trained with different seeds",
        members=5,
    ),
    "autorec-user": Preset(
        kind="rating-ae",
        model={"hidden": [500], "activation": "sigmoid", "output_activation": "identity"},
        train=TrainConfig(epochs=300, batch_size=64, lr=1e-3, l2=1e-3, patience=20),
        source="U-AutoRec (Sedhain et al. 2015): user vectors, otherwise as autorec-item; "
        "the mean of 5 models trained with different seeds",
        members=5,
    ),
    "autorec-blend": Preset(
        kind="blend",
        model={},
        train=TrainConfig(epochs=300),
        source="autorec-item and autorec-user, each trained alone, their rating predictions "
        "blended by least squares (an intercept and a weight each) on the validation slice "
        "(chosen on validation slices: bench/rating_sweep.py)",
        validation_fraction=0.1,
        blend=("autorec-item", "autorec-user"),
    ),
}


def check_preset(name: str) -> None:
    """A preset name this aerec knows, or one line listing those it does."""
    if name not in PRESETS:
        raise InputError(f"--preset {name!r}: known presets are {', '.join(PRESETS)}")
