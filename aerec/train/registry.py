"""Every model kind by the name config.json stores ("kind"): the one place a name, a
preset or a checkpoint's description becomes a model.

A new model kind is one module in aerec/train/kinds/ (a Recommender subclass with its
network, input transform, loss, selection metric and score meaning) and one line in KINDS.
"""

from __future__ import annotations

from typing import Any

from aerec.data.csr import CsrMatrix
from aerec.train.kinds.blend import RatingBlend
from aerec.train.kinds.item import ItemAutoEncoder
from aerec.train.kinds.multinomial import MultinomialAutoEncoder
from aerec.train.kinds.rating import RatingAutoEncoder
from aerec.train.kinds.recvae import RecVAE
from aerec.train.kinds.variational import VariationalMultinomial
from aerec.train.presets import PRESETS, Preset
from aerec.train.recommender import Recommender

KINDS: dict[str, type[Recommender]] = {
    kind.name: kind
    for kind in (
        RatingAutoEncoder,
        MultinomialAutoEncoder,
        VariationalMultinomial,
        RecVAE,
        ItemAutoEncoder,
        RatingBlend,
    )
}


def kind_named(name: str) -> type[Recommender]:
    if name not in KINDS:
        raise ValueError(f"model kind {name!r}: this aerec knows {', '.join(KINDS)}")
    return KINDS[name]


def _legacy_kind(described: dict[str, Any]) -> str:
    """The kind of a description written before kinds were named (aerec <= 0.x): a blend,
    or an autoencoder told by its config's likelihood and item_based keys."""
    if "blend" in described:
        return RatingBlend.name
    model = described.get("model", {})
    if model.get("item_based"):
        return ItemAutoEncoder.name
    if model.get("likelihood") == "multinomial":
        return MultinomialAutoEncoder.name
    return RatingAutoEncoder.name


def recommender_from(described: dict[str, Any]) -> Recommender:
    """Rebuild (untrained) what `Recommender.describe` recorded (config.json)."""
    name = str(described.get("kind") or _legacy_kind(described))
    return kind_named(name).rebuild(described, recommender_from)


def build_for_preset(preset: Preset, fit: CsrMatrix) -> Recommender:
    """An untrained model of the preset's kind, as wide as the rows it will read, with the
    positive threshold of the ratings in `fit` (a blend: its parts' presets, each so)."""
    return kind_named(preset.kind).for_preset(
        preset, fit, lambda name: build_for_preset(PRESETS[name], fit)
    )
