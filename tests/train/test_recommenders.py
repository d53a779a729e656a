"""Every model kind through the one Recommender interface, on data with a known answer.

Two taste groups: users 0..19 rate items 0..9 highly (5) and three of items 10..19 low
(1); users 20..39 the other way round. Each user's own-group item u % 10 is held out for
validation and item (u + 1) % 10 for test, so the right top-1 among a user's unrated
items is their test item. A subclass per kind runs the shared tests, as implicit does.
"""

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort
import pytest
import torch

from aerec.data.csr import CsrMatrix
from aerec.data.idmap import IdMap
from aerec.errors import InputError
from aerec.score.batch import UserBatch, graph_feed
from aerec.train.checkpoint import load_checkpoint, save_checkpoint
from aerec.train.config import ModelConfig, TrainConfig
from aerec.train.kinds.autoencoder import AutoEncoderKind
from aerec.train.kinds.item import ItemAutoEncoder
from aerec.train.kinds.multinomial import MultinomialAutoEncoder
from aerec.train.kinds.rating import RatingAutoEncoder
from aerec.train.kinds.recvae import RecVAE
from aerec.train.kinds.variational import VariationalMultinomial
from aerec.train.metrics import top_k
from aerec.train.recommender import Recommender
from aerec.train.registry import recommender_from

USERS, ITEMS, GROUP = 40, 20, 10
Fitted = tuple[Recommender, CsrMatrix, CsrMatrix, CsrMatrix]


def taste_groups() -> tuple[CsrMatrix, CsrMatrix, CsrMatrix]:
    """(fit, validation, test) user x item matrices of the two taste groups."""
    rng = np.random.default_rng(0)
    sides: list[list[tuple[int, int, float]]] = [[], [], []]
    for user in range(USERS):
        own = GROUP * (user // 20)
        other = GROUP - own
        for offset in range(GROUP):
            side = {user % GROUP: 1, (user + 1) % GROUP: 2}.get(offset, 0)
            sides[side].append((user, own + offset, 5.0))
        for item in rng.choice(GROUP, size=3, replace=False):
            sides[0].append((user, other + int(item), 1.0))
    matrices = []
    for entries in sides:
        rows, cols, values = (np.array(column) for column in zip(*entries, strict=True))
        matrices.append(CsrMatrix.from_indices(rows, cols, values, USERS, ITEMS))
    return matrices[0], matrices[1], matrices[2]


class RecommenderContract:
    """What every model kind must do; subclasses name the kind and its settings."""

    kind: ClassVar[type[Recommender]]
    settings: ClassVar[dict[str, Any]] = {}
    train = TrainConfig(epochs=120, batch_size=8, lr=1e-2, patience=120)

    @classmethod
    def model(cls, n_inputs: int) -> Recommender:
        return cls.kind(ModelConfig(n_items=n_inputs, **{"hidden": [8], **cls.settings}))

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls) -> Fitted:
        fit, validation, test = taste_groups()
        model = cls.model(cls.kind.oriented(fit).n_cols)
        model.fit(fit, validation, cls.train, device="cpu")
        return model, fit, validation, test

    def test_ranks_the_held_out_item_first(self, fitted: Fitted) -> None:
        model, fit, validation, test = fitted
        train = CsrMatrix.from_indices(
            *_coordinates(fit, validation), n_rows=USERS, n_cols=ITEMS
        )  # what the user has rated besides the test item
        block = model.score_block(train)
        assert block is not None
        scores = np.array(block(np.arange(USERS)), dtype=np.float64)
        scores[train.densify(np.arange(USERS)) != 0] = -np.inf
        first = top_k(scores, 1)[:, 0]
        wanted = test.indices[test.indptr[:-1]]
        assert (first == wanted).mean() >= 0.9

    def test_rating_predictions_follow_the_groups(self, fitted: Fitted) -> None:
        model, fit, _, test = fitted
        if not model.predicts_ratings:
            pytest.skip(f"{self.kind.__name__} ranks and does not predict ratings")
        predicted = model.predict(fit, test)
        assert predicted.shape == (test.nnz,)
        assert np.abs(predicted - 5.0).max() < 1.0

    def test_validation_metric_matches_the_kind(self, fitted: Fitted) -> None:
        model, fit, validation, _ = fitted
        assert isinstance(model, AutoEncoderKind)
        oriented = model.oriented(fit), model.oriented(validation)
        value = model.validate(model.network, *oriented, "cpu")
        assert model.selection.metric == ("val_rmse" if model.predicts_ratings else "val_ndcg@10")
        assert np.isfinite(value)

    def test_checkpoint_round_trip(self, fitted: Fitted, tmp_path: Path) -> None:
        model, fit, _, _ = fitted
        items = IdMap(np.arange(100, 100 + ITEMS, dtype=np.int64))
        save_checkpoint(tmp_path / "ckpt", model, items, {"preset": "test"}, {}, "epoch\n")
        loaded = load_checkpoint(tmp_path / "ckpt")
        assert type(loaded.model) is self.kind
        assert loaded.model.describe() == model.describe()
        oriented = model.oriented(fit)
        with torch.no_grad():
            dense = torch.from_numpy(oriented.densify(np.arange(oriented.n_rows)))
            torch.testing.assert_close(loaded.model.network(dense), model.network(dense))

    def test_export_or_refuse(self, fitted: Fitted, tmp_path: Path) -> None:
        from aerec.export.onnx_export import export_onnx

        model, fit, _, _ = fitted
        items = IdMap(np.arange(100, 100 + ITEMS, dtype=np.int64))
        save_checkpoint(tmp_path / "ckpt", model, items, {"preset": "test"}, {}, "epoch\n")
        if not model.reads_user_rows:
            with pytest.raises(InputError, match="cannot score user vectors"):
                export_onnx(tmp_path / "ckpt", tmp_path / "m.onnx", k=3)
            return
        export_onnx(tmp_path / "ckpt", tmp_path / "m.onnx", k=3)
        session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
        dense = fit.densify(np.arange(USERS))
        feed = graph_feed(UserBatch(np.arange(USERS, dtype=np.int64), fit))
        _, top = session.run(["scores", "items"], feed)
        with torch.no_grad():
            scores = model.network(torch.from_numpy(dense)).numpy()
        scores[dense != 0] = -np.inf
        np.testing.assert_array_equal(top[:, 0], items.ids[scores.argmax(axis=1)])

    @pytest.mark.parametrize("precision", ["int8", "fp16"])
    def test_reduced_precision_export_never_ranks_a_rated_item(
        self, fitted: Fitted, tmp_path: Path, precision: str
    ) -> None:
        """export-onnx checks the reduced graph against torch (top-k overlap, the mask)
        and refuses to write it otherwise; its ranking skips what the user rated."""
        from aerec.export.onnx_export import export_onnx

        model, fit, _, _ = fitted
        if not model.reads_user_rows:
            pytest.skip(f"{self.kind.__name__} does not export")
        items = IdMap(np.arange(100, 100 + ITEMS, dtype=np.int64))
        save_checkpoint(tmp_path / "ckpt", model, items, {"preset": "test"}, {}, "epoch\n")
        export_onnx(tmp_path / "ckpt", tmp_path / "m.onnx", k=3, precision=precision)
        session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
        feed = graph_feed(UserBatch(np.arange(USERS, dtype=np.int64), fit))
        _, top = session.run(["scores", "items"], feed)
        rated = fit.densify(np.arange(USERS)) != 0
        assert not rated[np.arange(USERS)[:, None], top - 100].any()

    def test_described_kind_is_rebuilt(self) -> None:
        model = self.model(12)
        again = recommender_from(model.describe())
        assert type(again) is self.kind and again.config == model.config


def _coordinates(*matrices: CsrMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.concatenate([np.repeat(np.arange(m.n_rows), m.row_counts()) for m in matrices])
    cols = np.concatenate([m.indices for m in matrices])
    return rows, cols, np.concatenate([m.data for m in matrices])


class TestRatingAutoEncoder(RecommenderContract):
    kind = RatingAutoEncoder
    settings: ClassVar[dict[str, Any]] = {"activation": "sigmoid"}


class TestMultinomialAutoEncoder(RecommenderContract):
    kind = MultinomialAutoEncoder
    settings: ClassVar[dict[str, Any]] = {"activation": "tanh"}


class TestItemAutoEncoder(RecommenderContract):
    kind = ItemAutoEncoder
    settings: ClassVar[dict[str, Any]] = {"activation": "sigmoid"}


def liked_and_disliked() -> tuple[CsrMatrix, CsrMatrix]:
    """(fit, validation): every user rates 6 of items 0..9 with 5 (one of them held out
    for validation) and 9 of items 10..19 with 1, so an unrated item of 10..19 is the more
    likely to be rated and an unrated item of 0..9 the one the user would like."""
    rng = np.random.default_rng(1)
    sides: list[list[tuple[int, int, float]]] = [[], []]
    for user in range(USERS):
        liked = rng.choice(GROUP, size=6, replace=False)
        for n, item in enumerate(liked):
            sides[int(n == 0)].append((user, int(item), 5.0))
        for item in rng.choice(GROUP, size=9, replace=False):
            sides[0].append((user, GROUP + int(item), 1.0))
    fit, validation = (
        CsrMatrix.from_indices(*(np.array(c) for c in zip(*entries, strict=True)), USERS, ITEMS)
        for entries in sides
    )
    return fit, validation


@pytest.mark.parametrize(("weight", "liked_first"), [(0.0, True), (1.0, False)])
def test_below_positive_weight_ranks_liked_over_merely_rated(
    weight: float, liked_first: bool
) -> None:
    fit, validation = liked_and_disliked()
    config = ModelConfig(
        n_items=ITEMS,
        hidden=[8],
        activation="tanh",
        input_dropout=0.5,
        below_positive_weight=weight,
    )
    model = MultinomialAutoEncoder(config)
    # 60 epochs kept whatever validation says: the held-out liked items would pick the
    # first epoch for weight 1, so the ranking would depend on the seed, not the weight
    model.refit(fit, TrainConfig(epochs=60, batch_size=8, lr=1e-2), [60], "cpu")
    train = CsrMatrix.from_indices(*_coordinates(fit, validation), n_rows=USERS, n_cols=ITEMS)
    block = model.score_block(train)
    assert block is not None
    scores = np.array(block(np.arange(USERS)), dtype=np.float64)
    scores[train.densify(np.arange(USERS)) != 0] = -np.inf
    first_is_liked = top_k(scores, 1)[:, 0] < GROUP
    # Mult-DAE (weight 1) ranks the items a user would rate; weight 0 the ones they like.
    assert first_is_liked.mean() == (1.0 if liked_first else 0.0)


class TestVariationalMultinomial(RecommenderContract):
    kind = VariationalMultinomial
    settings: ClassVar[dict[str, Any]] = {"activation": "tanh", "kl_cap": 0.2}


class TestRecVAE(RecommenderContract):
    kind = RecVAE
    settings: ClassVar[dict[str, Any]] = {
        "hidden": [8, 8, 4],
        "activation": "silu",
        "kl_gamma": 0.005,
        "encoder_passes": 3,
    }
