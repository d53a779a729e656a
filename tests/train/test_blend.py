"""The rating blend: exact least-squares weights, and a blend of two autoencoder kinds on
two taste groups (users 0..19 rate items 0..9 with 5 and items 10..19 with 1, users
20..39 the other way round; each user rates 12 random items)."""

from pathlib import Path

import numpy as np
import pytest

from aerec.data.csr import CsrMatrix
from aerec.data.idmap import IdMap
from aerec.errors import InputError
from aerec.train.checkpoint import load_checkpoint, save_checkpoint
from aerec.train.config import ModelConfig, TrainConfig
from aerec.train.kinds.blend import RatingBlend, blend_weights, blended
from aerec.train.kinds.item import ItemAutoEncoder
from aerec.train.kinds.rating import RatingAutoEncoder
from aerec.train.metrics import rmse
from aerec.train.registry import recommender_from

USERS, ITEMS = 40, 20
TRAIN = TrainConfig(epochs=80, batch_size=8, lr=1e-2, patience=80)


def test_blend_weights_recover_an_exact_linear_combination() -> None:
    rng = np.random.default_rng(0)
    predicted = rng.normal(3, 1, size=(50, 2))
    target = 0.5 + 2 * predicted[:, 0] - predicted[:, 1]
    weights = blend_weights(predicted, target)
    np.testing.assert_allclose(weights, [0.5, 2.0, -1.0], atol=1e-9)
    np.testing.assert_allclose(blended(predicted, weights), target, atol=1e-9)


def taste_sides() -> tuple[CsrMatrix, CsrMatrix, CsrMatrix]:
    """(fit, validation, test): 8, 2 and 2 of each user's 12 rated items."""
    rng = np.random.default_rng(3)
    sides: list[list[tuple[int, int, float]]] = [[], [], []]
    for user in range(USERS):
        for n, item in enumerate(rng.choice(ITEMS, size=12, replace=False)):
            liked = (user < USERS // 2) == (item < ITEMS // 2)
            sides[0 if n < 8 else 1 if n < 10 else 2].append(
                (user, int(item), 5.0 if liked else 1.0)
            )
    matrices = [
        CsrMatrix.from_indices(*(np.array(c) for c in zip(*entries, strict=True)), USERS, ITEMS)
        for entries in sides
    ]
    return matrices[0], matrices[1], matrices[2]


def two_kinds() -> RatingBlend:
    """An untrained blend of a user-based and an item-based rating autoencoder."""
    settings = {"hidden": [8], "activation": "sigmoid"}
    parts = [
        RatingAutoEncoder(ModelConfig(n_items=ITEMS, **settings)),
        ItemAutoEncoder(ModelConfig(n_items=USERS, **settings), members=2),
    ]
    return RatingBlend(parts, [TRAIN, TRAIN])


@pytest.fixture(scope="module")
def fitted() -> tuple[RatingBlend, dict, CsrMatrix, CsrMatrix, CsrMatrix]:
    fit, validation, test = taste_sides()
    model = two_kinds()
    record = model.fit(fit, validation, TRAIN, "cpu")
    return model, record.validation, fit, validation, test


def test_blend_fits_no_worse_than_either_part_on_validation(fitted) -> None:
    model, chosen, fit, validation, _ = fitted
    assert chosen["metric"] == "val_rmse"
    assert len(chosen["best_epoch"]) == 3  # one per member: 1 user-based, 2 item-based
    for part in model.parts:
        assert chosen["best"] <= rmse(part.predict(fit, validation), validation.data) + 1e-6


def test_blend_predicts_the_taste_groups(fitted) -> None:
    model, _, fit, _, test = fitted
    predicted = model.predict(fit, test)
    assert predicted.shape == (test.nnz,)
    assert np.abs(predicted - test.data).max() < 1.0


def test_refit_keeps_the_weights_and_trains_each_part_for_its_epochs(fitted) -> None:
    model, _, fit, validation, _ = fitted
    weights = model.weights.copy()
    again = two_kinds()
    again.network.weights.copy_(model.network.weights)
    rows = np.concatenate(
        [np.repeat(np.arange(m.n_rows), m.row_counts()) for m in (fit, validation)]
    )
    everything = CsrMatrix.from_indices(
        rows,
        np.concatenate([fit.indices, validation.indices]),
        np.concatenate([fit.data, validation.data]),
        USERS,
        ITEMS,
    )
    history = again.refit(everything, TRAIN, [4, 2, 3], "cpu")
    np.testing.assert_array_equal(again.weights, weights)
    trained = {(row["part"], row["member"]): row["epoch"] for row in history}
    assert trained == {(0, 0): 4, (1, 0): 2, (1, 1): 3}


def test_checkpoint_round_trip_and_export_refused(fitted, tmp_path: Path) -> None:
    from aerec.export.onnx_export import export_onnx

    model, _, fit, _, test = fitted
    items = IdMap(np.arange(ITEMS, dtype=np.int64))
    save_checkpoint(tmp_path / "ckpt", model, items, {"preset": "test"}, {}, "epoch\n")
    loaded = load_checkpoint(tmp_path / "ckpt").model
    assert isinstance(loaded, RatingBlend)
    assert loaded.describe() == model.describe() == recommender_from(model.describe()).describe()
    np.testing.assert_array_equal(loaded.predict(fit, test), model.predict(fit, test))
    with pytest.raises(InputError, match="cannot score user vectors"):
        export_onnx(tmp_path / "ckpt", tmp_path / "m.onnx", k=3)


def test_blend_ranks_each_users_own_group_first(fitted) -> None:
    model, _, fit, _, _ = fitted
    block = model.score_block(fit)
    assert block is not None
    scores = np.asarray(block(np.arange(USERS)))
    own = np.arange(ITEMS)[None, :] < ITEMS // 2
    own = own == (np.arange(USERS)[:, None] < USERS // 2)
    assert (
        np.where(own, scores, np.inf).min(axis=1) > np.where(own, -np.inf, scores).max(axis=1)
    ).all()
