import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from aerec.errors import InputError
from aerec.train.checkpoint import load_checkpoint


def test_checkpoint_contents(tiny_checkpoint: Path) -> None:
    names = {p.name for p in tiny_checkpoint.iterdir()}
    assert {"weights.pt", "config.json", "items.parquet", "metrics.json", "history.csv"} <= names
    metrics = json.loads((tiny_checkpoint / "metrics.json").read_text())
    assert {"rmse", "mae"} <= set(metrics["test"])
    assert "global_mean" in metrics["baselines"]
    assert metrics["split"]["train"]["ratings"] > 0
    state = torch.load(tiny_checkpoint / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    loaded = load_checkpoint(tiny_checkpoint)
    assert len(loaded.items) == loaded.model.config.n_items


def copy_of(checkpoint: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(checkpoint, tmp_path / "copy"))


def test_pickled_payload_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    broken = copy_of(tiny_checkpoint, tmp_path)

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("unpickled!",))

    torch.save({"evil": Payload()}, broken / "weights.pt", pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(InputError, match="refused"):
        load_checkpoint(broken)


def test_weights_not_matching_config(tiny_checkpoint: Path, tmp_path: Path) -> None:
    broken = copy_of(tiny_checkpoint, tmp_path)
    config = json.loads((broken / "config.json").read_text())
    config["model"]["hidden"] = [7, 3]
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"do not match config\.json"):
        load_checkpoint(broken)


def test_missing_part(tiny_checkpoint: Path, tmp_path: Path) -> None:
    broken = copy_of(tiny_checkpoint, tmp_path)
    (broken / "items.parquet").unlink()
    with pytest.raises(InputError, match=r"items\.parquet"):
        load_checkpoint(broken)


def test_huge_layers_are_refused_before_allocation(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A config asking for 10^6 x 10^6 weights (4 TB) is refused by comparing shapes with
    the weights file, before any layer is built."""
    broken = copy_of(tiny_checkpoint, tmp_path)
    config = json.loads((broken / "config.json").read_text())
    config["model"]["n_items"] = 1_000_000
    config["model"]["hidden"] = [1_000_000]
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"config\.json needs \(1000000"):
        load_checkpoint(broken)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("activation", "swish"),
        ("hidden", [200, -3]),
        ("hidden", "200"),
        ("n_items", 0),
        ("input_dropout", 1.5),
    ],
)
def test_bad_config_values_are_input_errors(
    field: str, value: object, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    broken = copy_of(tiny_checkpoint, tmp_path)
    config = json.loads((broken / "config.json").read_text())
    config["model"][field] = value
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=rf"config\.json: not a valid model config \({field}"):
        load_checkpoint(broken)
