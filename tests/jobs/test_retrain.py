import json
from pathlib import Path

from aerec.jobs.retrain import regression, retrain


def test_regression_direction() -> None:
    assert (
        regression({"metric": "val_ndcg@10", "best": 0.20}, {"metric": "val_ndcg@10", "best": 0.25})
        > 0.049
    )
    assert (
        regression({"metric": "val_rmse", "best": 0.90}, {"metric": "val_rmse", "best": 0.95}) < 0
    )
    assert regression(
        {"metric": "val_rmse", "best": 0.9}, {"metric": "val_ndcg@10", "best": 0.2}
    ) == float("inf")


def test_gate_promotes_then_keeps(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    first = retrain(tiny_data[0], tmp_path, split="random:0.2", device="cpu", k=5)
    assert first["promoted"] is True
    model = (tmp_path / "model.onnx").read_bytes()
    # Same data and seed give the same validation score: with a negative tolerance the
    # candidate counts as worse, and the current model must stay.
    second = retrain(tiny_data[0], tmp_path, split="random:0.2", device="cpu", k=5, tolerance=-1.0)
    assert second["promoted"] is False and "worse" in second["reason"]
    assert (tmp_path / "model.onnx").read_bytes() == model
    metrics = json.loads((tmp_path / "checkpoint" / "metrics.json").read_text())
    assert metrics["validation"] == first["validation"]
    third = retrain(tiny_data[0], tmp_path, split="random:0.2", device="cpu", k=5, tolerance=0.0)
    assert third["promoted"] is True
