"""train-model and evaluate as functions, for every preset, on tiny synthetic data."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_aerec

from aerec.data.split import load_split, split_frame
from aerec.data.synth import SynthConfig, generate, write_synthetic
from aerec.errors import InputError
from aerec.export.onnx_export import export_onnx
from aerec.train.config import TrainConfig
from aerec.train.evaluate import leaky_seed_topk_accuracy
from aerec.train.kinds.blend import RatingBlend
from aerec.train.kinds.rating import RatingAutoEncoder
from aerec.train.pipeline import (
    TrainOptions,
    build_for_preset,
    eval_data,
    evaluate_checkpoint,
    fit_then_refit,
    train_model,
)
from aerec.train.presets import PRESETS
from aerec.train.registry import kind_named

METRIC_KEYS = {"rmse", "mae", "precision@10", "recall@10", "ndcg@10", "coverage@10"}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains_and_reports(
    preset: str, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    metrics = train_model(
        tiny_data[0],
        tmp_path / "ckpt",
        "random:0.2",
        TrainOptions(preset=preset, epochs=2, device="cpu"),
    )
    assert set(metrics["test"]) >= METRIC_KEYS
    assert {"global_mean", "biases", "popularity", "item_knn", "ease"} <= set(metrics["baselines"])
    for values in metrics["baselines"].values():
        assert set(values) >= METRIC_KEYS
    assert metrics["split"]["train"]["ratings"] > 0
    rates = kind_named(PRESETS[preset].kind).predicts_ratings
    assert (metrics["test"]["rmse"] is not None) == rates
    saved = json.loads((tmp_path / "ckpt" / "metrics.json").read_text())
    assert saved["test"] == pytest.approx(metrics["test"])
    if PRESETS[preset].blend:  # the weights fitted on validation survive the refit
        from aerec.train.checkpoint import load_checkpoint

        blend = load_checkpoint(tmp_path / "ckpt").model
        assert isinstance(blend, RatingBlend) and np.any(blend.weights[1:] != 0)


@pytest.fixture(scope="module")
def autorec(
    tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict]:
    """An autorec-item (5-member ensemble) checkpoint and the metrics train-model returned."""
    out = tmp_path_factory.mktemp("autorec") / "ckpt"
    metrics = train_model(
        tiny_data[0],
        out,
        "random:0.2",
        TrainOptions(preset="autorec-item", epochs=2, device="cpu", baselines=False),
    )
    return out, metrics


def test_item_based_model_is_not_exported(autorec: tuple[Path, dict], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="item-based"):
        export_onnx(autorec[0], tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_item_based_predictions_in_user_order() -> None:
    ratings, _ = generate(SynthConfig(users=40, items=30, ratings=500, seed=4))
    data, _ = eval_data(split_frame(ratings, "random:0.2", 1), seed=1)
    model = build_for_preset(PRESETS["autorec-item"], data.fit)
    model.fit(data.fit, data.validation, TrainConfig(epochs=1), "cpu")
    predicted = model.predict(data.train, data.test, "cpu")
    import torch

    with torch.no_grad():
        items = torch.from_numpy(data.train.transpose().densify(np.arange(30)))
        full = model.network(items).numpy()
    rows = np.repeat(np.arange(data.test.n_rows), data.test.row_counts())
    np.testing.assert_allclose(predicted, full[data.test.indices, rows], rtol=1e-5)


def test_leaky_metric_rewards_copying_the_input() -> None:
    """An identity 'model' looks perfect under the seed's protocol and useless without it."""
    ratings, _ = generate(SynthConfig(users=60, items=40, ratings=900, seed=8))
    data, _ = eval_data(split_frame(ratings, "random:0.2", 1), seed=1)

    import torch

    model = RatingAutoEncoder(PRESETS["seed-ml1m"].model_config(40))
    model.network = torch.nn.Identity()  # type: ignore[assignment]
    assert leaky_seed_topk_accuracy(model, data, k=10) > 0.6


def test_evaluate_checkpoint_and_cli(
    tiny_checkpoint: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    metrics = evaluate_checkpoint(tiny_checkpoint, tiny_data[0], "user-temporal:0.2", seed=1)
    saved = json.loads((tiny_checkpoint / "metrics.json").read_text())
    assert metrics["test"]["ndcg@10"] == pytest.approx(saved["test"]["ndcg@10"])
    other = tmp_path / "other.csv"
    write_synthetic(SynthConfig(users=50, items=30, ratings=600, seed=2), other)
    with pytest.raises(InputError, match="differ"):
        evaluate_checkpoint(tiny_checkpoint, other, "user-temporal:0.2")
    result = run_aerec(
        "evaluate",
        "--checkpoint",
        str(tiny_checkpoint),
        "--ratings",
        str(tiny_data[0]),
        "--split",
        "user-temporal:0.2",
        "--seed",
        "1",
        "--no-baselines",
    )
    assert result.returncode == 0, result.stderr
    assert "ndcg@10" in result.stdout and "model" in result.stdout


def test_ensemble_checkpoint_round_trip(
    autorec: tuple[Path, dict], tiny_data: tuple[Path, Path]
) -> None:
    from aerec.train.checkpoint import load_checkpoint
    from aerec.train.model import Ensemble

    checkpoint, metrics = autorec
    loaded = load_checkpoint(checkpoint)
    assert isinstance(loaded.model.network, Ensemble) and len(loaded.model.network.members) == 5
    assert len(metrics["validation"]["best_epoch"]) == 5
    again = evaluate_checkpoint(checkpoint, tiny_data[0], "random:0.2", baselines=False)
    assert again["test"]["rmse"] == pytest.approx(metrics["test"]["rmse"])


def test_the_test_side_changes_nothing_in_training(
    tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """Two runs whose splits share the train side and differ in the test side train
    identically: the same history and the same weights (nothing of the test side leaks)."""
    import polars as pl
    import torch

    frame = pl.read_csv(tiny_data[0])
    split = split_frame(
        frame.rename({"userId": "user_id", "movieId": "item_id"}), "random:0.2", seed=3
    )
    folder = tmp_path / "data"
    folder.mkdir()
    split.train.write_csv(folder / "train.csv")
    split.test.write_csv(folder / "test.csv")
    shifted = split.test.with_columns((6 - pl.col("rating")).clip(1, 5).alias("rating"))
    shifted.head(split.test.height // 2).write_csv(folder / "other-test.csv")
    runs = []
    for test_file in ("test.csv", "other-test.csv"):
        out = tmp_path / test_file.removesuffix(".csv")
        train_model(
            folder / "train.csv",
            out,
            f"files:train.csv,{test_file}",
            TrainOptions(epochs=4, device="cpu", baselines=False),
        )
        runs.append(out)
    first_history, second_history = (
        pl.read_csv(run / "history.csv").drop("seconds", "train_seconds") for run in runs
    )  # all but the wall-clock times of each epoch
    assert first_history.equals(second_history) and first_history.height == 4
    first, second = (torch.load(run / "weights.pt", weights_only=True) for run in runs)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_implicit_feedback_trains_and_ranks(tmp_path: Path) -> None:
    """Ratings that are all 1 (implicit feedback): every held-out rating is a positive."""
    import polars as pl

    ratings, _ = write_synthetic(
        SynthConfig(users=120, items=80, ratings=3000, seed=2), tmp_path / "r.csv"
    )
    implicit = tmp_path / "implicit.csv"
    pl.read_csv(ratings).with_columns(pl.lit(1.0).alias("rating")).write_csv(implicit)
    metrics = train_model(
        implicit, tmp_path / "ckpt", "user-temporal:0.2", TrainOptions(epochs=3, device="cpu")
    )
    assert metrics["test"]["ranked_users"] == metrics["split"]["test"]["users"]
    assert metrics["test"]["ndcg@10"] > 0 and metrics["baselines"]["ease"]["ndcg@10"] > 0


def test_the_evaluated_model_is_refit_on_the_whole_train_side(
    tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """Epochs are chosen on the validation slice; the model saved and evaluated is then
    trained on every train-side rating (validation slice included), as the baselines are
    refit after their tuning."""
    from aerec.train.checkpoint import load_checkpoint

    metrics = train_model(
        tiny_data[0], tmp_path / "ckpt", "user-temporal:0.2", TrainOptions(epochs=3, device="cpu")
    )
    kept = metrics["validation"]["best_epoch"]
    assert metrics["refit"] == {"ratings": metrics["split"]["train"]["ratings"], "epochs": kept}
    data, _ = eval_data(load_split(tiny_data[0], "user-temporal:0.2", 0), 0, 0.1)
    refit = PRESETS["default"]
    model, _, rows = fit_then_refit(refit, data, replace(refit.train, epochs=3), "cpu")
    assert len(rows) == kept[0]  # the refit ran for the kept epochs
    loaded = load_checkpoint(tmp_path / "ckpt")
    for saved, again in zip(
        loaded.model.network.state_dict().values(),
        model.network.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(saved, again)  # the saved model is the refit one


def test_split_none_refits_on_every_rating(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    """The production model: epochs chosen on validation, then a refit that knows every
    item of the ratings, including those a user-temporal split would hold out."""
    import polars as pl

    from aerec.train.checkpoint import load_checkpoint

    metrics = train_model(
        tiny_data[0], tmp_path / "ckpt", "none", TrainOptions(epochs=4, device="cpu")
    )
    assert "test" not in metrics and metrics["split"]["test"]["ratings"] == 0
    kept = metrics["validation"]["best_epoch"]
    assert metrics["refit"] == {"ratings": 3000, "epochs": kept} and 1 <= kept[0] <= 4
    loaded = load_checkpoint(tmp_path / "ckpt")
    every_item = pl.read_csv(tiny_data[0])["movieId"].unique().sort().to_numpy()
    assert np.array_equal(loaded.items.ids, every_item)
    history = pl.read_csv(tmp_path / "ckpt" / "history.csv")
    assert history["epoch"].to_list() == list(range(1, kept[0] + 1))
    result = run_aerec(
        "train-model",
        "--ratings",
        str(tiny_data[0]),
        "--out",
        str(tmp_path / "cli"),
        "--split",
        "none",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--precision",
        "bf16",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no test side (--split none): val_ndcg@10 ")
    config = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert config["precision"] == "bf16" and config["train"]["precision"] == "bf16"
    auto = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert auto["precision"] == "fp32" and auto["train"]["precision"] == "auto"  # on a CPU


def test_the_metrics_table_names_the_preset_and_explains_itself() -> None:
    from aerec.train.pipeline import format_metrics

    metrics = {
        "test": {"rmse": None, "ndcg@10": 0.25},
        "baselines": {"ease": {"ndcg@10": 0.2}},
        "split": {"spec": "random:0.2", "test": {"ratings": 1234, "users": 56}},
        "leaky_seed_topk_accuracy@10": 0.5,
    }
    table = format_metrics(metrics, 10, "autorec-blend").splitlines()
    assert table[1].split()[:1] == ["autorec-blend"] and table[2].split()[0] == "ease"
    text = " ".join(table)
    assert "test side of split random:0.2 (1,234 ratings of 56 users)" in text
    assert "coverage@10: share of the catalogue" in text
    assert "measures copying, not recommending" in text
    assert all(len(line) <= 160 for line in table)


def test_a_kept_epoch_near_the_limit_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    from aerec.train.pipeline import warn_if_capped

    warn_if_capped([139, 142], 150)
    warn_if_capped([100], 150)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "kept epoch 139, 142 of at most 150: the epoch limit may be what stopped it; "
        "a larger --epochs may do better"
    ]


@pytest.mark.parametrize("preset", ["mult-vae", "recvae"])
def test_variational_kinds_as_production_models_and_ensembles(
    preset: str, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """`--split none` refits on every rating; an ensemble of two (fit, then refit for each
    member's kept epochs) saves, loads without pickle and exports as int8."""
    from aerec.train.checkpoint import load_checkpoint, save_checkpoint
    from aerec.train.kinds.autoencoder import AutoEncoderKind

    metrics = train_model(
        tiny_data[0], tmp_path / "none", "none", TrainOptions(preset=preset, epochs=3, device="cpu")
    )
    assert metrics["refit"]["ratings"] == 3000
    assert type(load_checkpoint(tmp_path / "none").model) is kind_named(PRESETS[preset].kind)

    data, items = eval_data(load_split(tiny_data[0], "random:0.2", 0), 0)
    small = {"model.hidden": [16, 16, 8] if preset == "recvae" else [16, 8], "members": 2}
    chosen = PRESETS[preset].changed(small)
    model, fitted, refit = fit_then_refit(chosen, data, replace(chosen.train, epochs=3), "cpu")
    assert isinstance(model, AutoEncoderKind) and model.members == 2
    assert len(fitted.validation["best_epoch"]) == 2
    assert sorted({row["member"] for row in refit}) == [0, 1]
    save_checkpoint(tmp_path / "ensemble", model, items, {"preset": preset}, {}, "epoch\n")
    loaded = load_checkpoint(tmp_path / "ensemble")
    assert loaded.model.describe() == model.describe()
    meta = export_onnx(tmp_path / "ensemble", tmp_path / "m.onnx", k=5, precision="int8")
    assert meta["aerec.precision"] == "int8"
