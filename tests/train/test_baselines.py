from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from aerec.data.csr import CsrMatrix
from aerec.train.baselines import (
    Biases,
    ease_block,
    gram_matrix,
    item_knn_block,
    liked_ease_block,
    popularity_block,
)
from aerec.train.metrics import ScoreBlock


def csr(dense: np.ndarray) -> CsrMatrix:
    r, c = np.nonzero(dense)
    return CsrMatrix.from_indices(r, c, dense[r, c].astype(np.float32), *dense.shape)


def test_biases_exact_without_regularisation() -> None:
    # ratings = 3 + user effect (+1, -1) + item effect (+0.5, -0.5): recovered exactly
    dense = np.array([[4.5, 3.5], [2.5, 1.5]])
    biases = Biases.fit(csr(dense), reg_user=0.0, reg_item=0.0, iterations=50)
    assert biases.mean == pytest.approx(3.0)
    predicted = biases.predict(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    np.testing.assert_allclose(predicted, [4.5, 3.5, 2.5, 1.5], atol=1e-6)
    assert biases.predict(np.array([-1]), np.array([-1]))[0] == pytest.approx(3.0)


def test_popularity_and_gram() -> None:
    train = csr(np.array([[5, 0, 1], [4, 2, 0]]))
    assert popularity_block(train)(np.array([0])).tolist() == [[2.0, 1.0, 1.0]]
    np.testing.assert_array_equal(gram_matrix(train), [[2, 1, 1], [1, 1, 0], [1, 0, 1]])


def test_ease_closed_form() -> None:
    x = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=float)
    train = csr(x)
    gram = x.T @ x + 2.0 * np.eye(3)
    precision = np.linalg.inv(gram)
    weights = np.eye(3) - precision / np.diag(precision)
    np.testing.assert_allclose(ease_block(train, 2.0)(np.arange(4)), x @ weights, atol=1e-9)
    assert np.allclose(np.diag(weights), 0.0)


def test_liked_ease_is_ridge_regression_of_liked_on_the_other_rated_items() -> None:
    ratings = np.array([[5, 2, 0, 4], [4, 0, 1, 5], [0, 5, 4, 1], [5, 4, 5, 0], [1, 0, 5, 4]])
    rated, liked = (ratings != 0).astype(float), (ratings >= 4).astype(float)
    np.testing.assert_array_equal(gram_matrix(csr(ratings), liked_from=4), rated.T @ liked)
    # Column j of B: ridge regression of liked item j on the rated items other than j.
    want = np.zeros((4, 4))
    for j in range(4):
        others = [i for i in range(4) if i != j]
        x = rated[:, others]
        want[others, j] = np.linalg.solve(x.T @ x + 3.0 * np.eye(3), x.T @ liked[:, j])
    got = liked_ease_block(csr(ratings), 3.0, liked_from=4)(np.arange(5))
    np.testing.assert_allclose(got, rated @ want, atol=1e-9)


def test_item_knn_keeps_top_neighbours() -> None:
    train = csr(np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 1]], dtype=float))
    scores = item_knn_block(train, neighbours=1)(np.array([0]))
    # user 0 rated items 0 and 1; each item's single nearest neighbour is kept
    assert scores[0, 2] == 0.0  # item 2's only neighbour is item 3
    assert scores[0, 0] > 0 and scores[0, 1] > 0


def test_ials_ranks_the_unrated_item_of_a_users_own_group_first() -> None:
    """Two groups of 20 users, each rating 9 of its group's 10 items (a different one left
    out per user): iALS, whose factors learn the groups, ranks the missing item first."""
    from aerec.train.baselines import ials_block

    dense = np.zeros((40, 20))
    for user in range(40):
        own = 10 * (user // 20)
        dense[user, own : own + 10] = 5.0
        dense[user, own + user % 10] = 0.0
    train = csr(dense)
    scores = ials_block(train, factors=4, regularization=0.1, alpha=1.0)(np.arange(40))
    scores[dense != 0] = -np.inf
    wanted = [10 * (user // 20) + user % 10 for user in range(40)]
    assert scores.argmax(axis=1).tolist() == wanted


def test_a_tuned_choice_at_the_edge_of_its_grid_is_a_warning(
    tiny_data: tuple[Path, Path], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings score -(a - 3)^2 on validation: on a grid of 1..3 the choice is at its edge
    (a warning) unless 3 is where `a` saturates; on 1..5 it is inside (none); the refit on
    train uses the choice."""
    from aerec.data.split import load_split
    from aerec.train import evaluate
    from aerec.train.evaluate import TunedBaseline, _tuned
    from aerec.train.pipeline import eval_data

    data, _ = eval_data(load_split(tiny_data[0], "random:0.2", 0), 0)
    closeness: dict[int, float] = {}
    built: list[tuple[CsrMatrix, float]] = []

    def build(train: CsrMatrix, setting: dict[str, float], gram: np.ndarray | None) -> ScoreBlock:
        block = popularity_block(train)
        closeness[id(block)] = -((setting["a"] - 3) ** 2)
        built.append((train, setting["a"]))
        return block

    def ranking(block: ScoreBlock, *args: object, **kwargs: object) -> dict[str, float]:
        return {"ndcg@10": closeness[id(block)]}

    monkeypatch.setattr(evaluate, "evaluate_ranking", ranking)
    cases = (((1.0, 2.0, 3.0), {}, True), ((1.0, 3.0, 5.0), {}, False))
    cases += (((1.0, 2.0, 3.0), {"a": 3.0}, False),)  # a choice at saturation is no edge
    for grid, saturates, edge in cases:
        caplog.clear()
        built.clear()
        points = [{"a": a} for a in grid]
        baseline = TunedBaseline("toy", build, points, item_item=False, saturates=saturates)
        chosen, _ = _tuned(baseline, data, 10)
        assert chosen == {"a": 3.0}
        assert built[-1] == (data.train, 3.0) and all(t is data.fit for t, _ in built[:-1])
        assert any("at the edge of the grid" in r.message for r in caplog.records) == edge


def test_a_choice_at_the_grid_s_edge_goes_on_beyond_it_within_the_limits() -> None:
    """A peak past the grid's top is followed a step at a time (the grid's own ratio), the
    other setting as chosen, until the choice is inside; a limit stops it; lower edges
    extend too; a setting without limits never does."""
    from aerec.train.evaluate import grid_search

    def peak_at(a: float, b: float) -> Callable[[dict[str, float]], float]:
        return lambda s: -((s["a"] - a) ** 2) - (s["b"] - b) ** 2

    def added(
        limits: dict[str, tuple[float, float]], peak: Callable[[dict[str, float]], float]
    ) -> list[dict[str, float]]:
        return [setting for setting, _ in grid_search(grid, limits, peak)[len(grid) :]]

    grid = [{"a": a, "b": b} for a in (1.0, 2.0) for b in (1.0, 2.0)]
    assert added({"a": (0.1, 100.0)}, peak_at(8.0, 1.0)) == [
        {"a": 4.0, "b": 1.0},
        {"a": 8.0, "b": 1.0},
        {"a": 16.0, "b": 1.0},  # worse than 8: 8 is inside, the search ends
    ]
    assert added({"a": (0.1, 4.0)}, peak_at(8.0, 1.0)) == [{"a": 4.0, "b": 1.0}]  # the limit
    assert added({"a": (0.2, 100.0), "b": (0.2, 100.0)}, peak_at(0.25, 2.0)) == [
        {"a": 0.5, "b": 2.0},
        {"a": 1.0, "b": 4.0},
        {"a": 0.25, "b": 2.0},  # 0.125 would pass the lower limit
    ]
    assert added({}, peak_at(8.0, 1.0)) == []
    # from a value at or above saturation the search does not go up; it still goes down
    saturated = grid_search(grid, {"a": (0.1, 100.0)}, peak_at(8.0, 1.0), {"a": 4.0})
    assert [setting for setting, _ in saturated[len(grid) :]] == [{"a": 4.0, "b": 1.0}]
    saturated = grid_search(grid, {"a": (0.2, 100.0)}, peak_at(0.25, 1.0), {"a": 2.0})
    assert [setting for setting, _ in saturated[len(grid) :]] == [
        {"a": 0.5, "b": 1.0},
        {"a": 0.25, "b": 1.0},
    ]


def test_strongest_baselines_on_validation_are_their_grids_best(
    tiny_data: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """EASE, liked-target EASE and iALS (item-kNN is not among them), each at the best
    validation NDCG@10 its grid reaches; the test side is never scored."""
    from aerec.data.split import load_split
    from aerec.train import evaluate
    from aerec.train.baselines import ials_available
    from aerec.train.evaluate import strongest_on_validation, tune_on_validation, tuned_baselines
    from aerec.train.pipeline import eval_data

    data, _ = eval_data(load_split(tiny_data[0], "random:0.2", 0), 0)
    monkeypatch.setattr(evaluate, "IALS_GRID", evaluate.IALS_GRID[:2])  # two settings will do
    scored: list[CsrMatrix] = []
    ranking = evaluate.evaluate_ranking

    def recording(block: ScoreBlock, train: CsrMatrix, held_out: CsrMatrix, *a, **k):  # type: ignore[no-untyped-def]
        scored.append(held_out)
        return ranking(block, train, held_out, *a, **k)

    monkeypatch.setattr(evaluate, "evaluate_ranking", recording)
    best = strongest_on_validation(data)
    wanted = {"ease", "ease_liked_target"} | ({"ials"} if ials_available() else set())
    assert set(best) == wanted
    assert all(held_out is data.validation for held_out in scored)
    by_name = {b.name: b for b in tuned_baselines(data)}
    assert best["ease"] == tune_on_validation(by_name["ease"], data)[1]
    assert 0 < best["ease"] <= 1
    if ials_available():  # factors saturate at the rank of the fit matrix (80 items here)
        assert (data.fit.n_rows, data.fit.n_cols) == (120, 80)
        assert by_name["ials"].saturates == {"factors": 80.0}
