"""Model kinds by name: config.json stores the kind, the registry rebuilds it, and a
checkpoint written before kinds had names still loads as the kind it was."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aerec.data.idmap import IdMap
from aerec.errors import InputError
from aerec.train.checkpoint import load_checkpoint, save_checkpoint
from aerec.train.config import ModelConfig
from aerec.train.kinds.item import ItemAutoEncoder
from aerec.train.kinds.multinomial import MultinomialAutoEncoder
from aerec.train.kinds.rating import RatingAutoEncoder
from aerec.train.presets import PRESETS
from aerec.train.registry import KINDS, kind_named, recommender_from

ITEMS = 7


def saved(model: RatingAutoEncoder | MultinomialAutoEncoder, folder: Path) -> Path:
    items = IdMap(np.arange(1, ITEMS + 1, dtype=np.int64))
    save_checkpoint(folder, model, items, {"preset": "test"}, {}, "epoch\n")
    return folder


def test_every_preset_names_a_registered_kind() -> None:
    assert {preset.kind for preset in PRESETS.values()} <= set(KINDS)
    assert all(kind_named(name).name == name for name in KINDS)


def test_config_json_stores_the_kind(tmp_path: Path) -> None:
    model = MultinomialAutoEncoder(ModelConfig(n_items=ITEMS, hidden=[3]))
    config = json.loads((saved(model, tmp_path / "c") / "config.json").read_text())
    assert config["kind"] == "mult-dae" and "likelihood" not in config["model"]


@pytest.mark.parametrize(
    ("legacy", "kind"),
    [
        ({"likelihood": "multinomial", "item_based": False}, MultinomialAutoEncoder),
        ({"likelihood": "mse", "item_based": False}, RatingAutoEncoder),
        ({"likelihood": "mse", "item_based": True}, ItemAutoEncoder),
    ],
)
def test_a_checkpoint_from_before_kind_names_loads_as_its_kind(
    legacy: dict[str, object], kind: type, tmp_path: Path
) -> None:
    """config.json of an older aerec: no "kind", the model's likelihood and item_based."""
    model = kind(ModelConfig(n_items=ITEMS, hidden=[3]))
    folder = saved(model, tmp_path / "c")
    config = json.loads((folder / "config.json").read_text())
    del config["kind"]
    config["model"].update(legacy)
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_checkpoint(folder)
    assert type(loaded.model) is kind
    rows = torch.rand(3, ITEMS) if kind is not ItemAutoEncoder else None
    if rows is not None:
        with torch.no_grad():
            torch.testing.assert_close(loaded.model.network(rows), model.network.eval()(rows))


def test_an_unknown_kind_is_refused_with_one_line(tmp_path: Path) -> None:
    folder = saved(RatingAutoEncoder(ModelConfig(n_items=ITEMS, hidden=[3])), tmp_path / "c")
    config = json.loads((folder / "config.json").read_text())
    config["kind"] = "mult-vae-from-the-future"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"config.json: .*model kind 'mult-vae-from-the-future'"):
        load_checkpoint(folder)


def test_the_description_round_trips_through_the_registry() -> None:
    model = MultinomialAutoEncoder(ModelConfig(n_items=ITEMS, hidden=[3]), members=2)
    again = recommender_from(model.describe())
    assert type(again) is MultinomialAutoEncoder and again.describe() == model.describe()
