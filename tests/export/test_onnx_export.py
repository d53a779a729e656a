import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from aerec.data.csr import CsrMatrix
from aerec.export.graph import ScoringGraph
from aerec.export.onnx_export import OPSET, dense_reference, export_onnx
from aerec.score.batch import UserBatch, graph_feed
from aerec.train.checkpoint import load_checkpoint


def test_graph_signature_and_metadata(tiny_model: Path, tiny_checkpoint: Path) -> None:
    model = onnx.load(str(tiny_model))
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= OPSET
    assert [i.name for i in model.graph.input] == ["columns", "values"]
    assert [o.name for o in model.graph.output] == ["scores", "items"]
    meta = {p.key: p.value for p in model.metadata_props}
    items = load_checkpoint(tiny_checkpoint).items
    assert json.loads(meta["aerec.item_ids"]) == items.ids.tolist()
    assert meta["aerec.k"] == "5"
    assert int(meta["aerec.n_items"]) == len(items)
    assert len(meta["aerec.model_version"]) == 64
    assert meta["aerec.input_format"] == "padded-v1"


def feed_of(ratings: np.ndarray) -> dict[str, np.ndarray]:
    """The graph's inputs for dense rating rows (0 = unrated)."""
    rows, columns = np.nonzero(ratings)
    matrix = CsrMatrix.from_indices(rows, columns, ratings[rows, columns], *ratings.shape)
    return graph_feed(UserBatch(np.arange(ratings.shape[0], dtype=np.int64), matrix))


@pytest.mark.parametrize("batch", [1, 5, 33])
def test_sparse_graph_equals_the_dense_network(
    tiny_model: Path, tiny_checkpoint: Path, batch: int
) -> None:
    """The graph's sparse first layer gives what the network's dense forward pass gives."""
    loaded = load_checkpoint(tiny_checkpoint)
    graph = ScoringGraph(loaded.model.scoring_module(), loaded.items.ids, 5)
    rng = np.random.default_rng(batch)
    n = len(loaded.items)
    ratings = np.where(rng.random((batch, n)) < 0.2, rng.integers(1, 6, (batch, n)), 0)
    ratings[:, 0] = 4  # everyone rated something
    ratings = ratings.astype(np.float32)
    session = ort.InferenceSession(str(tiny_model), providers=["CPUExecutionProvider"])
    scores, items = session.run(["scores", "items"], feed_of(ratings))
    want_scores, want_items = dense_reference(graph, ratings)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(items, want_items)


def test_dynamic_batch_masks_rated_items(tiny_model: Path, tiny_checkpoint: Path) -> None:
    ids = load_checkpoint(tiny_checkpoint).items.ids
    session = ort.InferenceSession(str(tiny_model), providers=["CPUExecutionProvider"])
    for batch in (1, 3, 17):
        ratings = np.zeros((batch, len(ids)), dtype=np.float32)
        ratings[:, :10] = 5.0  # every user rated the first ten items
        scores, items = session.run(["scores", "items"], feed_of(ratings))
        assert scores.shape == items.shape == (batch, 5)
        assert not np.isin(items, ids[:10]).any()
        assert np.isin(items, ids).all()
        assert (np.diff(scores, axis=1) <= 0).all()


def test_user_who_rated_almost_everything(tiny_model: Path, tiny_checkpoint: Path) -> None:
    ids = load_checkpoint(tiny_checkpoint).items.ids
    session = ort.InferenceSession(str(tiny_model), providers=["CPUExecutionProvider"])
    ratings = np.full((2, len(ids)), 3.0, dtype=np.float32)
    ratings[0, :2] = 0.0  # only two unrated items left for the first user
    scores, items = session.run(["scores", "items"], feed_of(ratings))
    assert np.isfinite(scores[0]).sum() == 2
    assert set(items[0][np.isfinite(scores[0])]) == set(ids[:2])
    assert not np.isfinite(scores[1]).any()


def test_k_larger_than_catalogue_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from aerec.errors import InputError

    with pytest.raises(InputError, match=r"--k 10000: .* knows only 80 items"):
        export_onnx(tiny_checkpoint, tmp_path / "m.onnx", k=10_000)
    meta = export_onnx(tiny_checkpoint, tmp_path / "m.onnx", k=80)
    assert meta["aerec.k"] == meta["aerec.n_items"] == "80"


def test_bad_checkpoint(tmp_path: Path) -> None:
    from aerec.errors import InputError

    with pytest.raises(InputError):
        export_onnx(tmp_path, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_failed_verification_writes_nothing(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aerec.errors import AerecError
    from aerec.export import onnx_export

    def disagree(*args: object, **kwargs: object) -> None:
        raise AssertionError("Not equal to tolerance")

    monkeypatch.setattr(onnx_export, "verify_against_torch", disagree)
    with pytest.raises(AerecError, match="verification failed"):
        export_onnx(tiny_checkpoint, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_int8_export_quantizes_the_dense_layers(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.onnx"
    meta = export_onnx(tiny_checkpoint, out, k=5, precision="int8")
    assert meta["aerec.precision"] == "int8"
    model = onnx.load(str(out))
    constants = {tensor.name for tensor in model.graph.initializer}
    float_layers = [
        node
        for node in model.graph.node
        if node.op_type in ("Gemm", "MatMul") and node.input[1] in constants
    ]
    assert float_layers == []  # no float product by a weight matrix is left
    assert "MatMulInteger" in {node.op_type for node in model.graph.node}
    weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights  # stored as int8
    loaded = load_checkpoint(tiny_checkpoint)
    graph = ScoringGraph(loaded.model.scoring_module(), loaded.items.ids, 5)
    rng = np.random.default_rng(0)
    n = len(loaded.items)
    ratings = np.where(rng.random((64, n)) < 0.2, rng.integers(1, 6, (64, n)), 0)
    ratings[:, 0] = 4
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    _, items = session.run(["scores", "items"], feed_of(ratings.astype(np.float32)))
    _, want = dense_reference(graph, ratings.astype(np.float32))
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(items, want, strict=True)])
    assert overlap >= 0.9
    rated = {(u, i) for u, i in zip(*np.nonzero(ratings), strict=True)}
    index = {item: column for column, item in enumerate(loaded.items.ids)}
    assert not any((u, index[i]) in rated for u, row in enumerate(items) for i in row)


def test_fp16_export_computes_in_float16_behind_float32_edges(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """Every weight and product in float16, the inputs and scores float32 as the contract
    says; the rated items masked exactly (a user who rated all but two items gets those
    two and -inf slots), the top 5 close to the float32 network's."""
    out = tmp_path / "fp16.onnx"
    assert export_onnx(tiny_checkpoint, out, k=5, precision="fp16")["aerec.precision"] == "fp16"
    model = onnx.load(str(out))
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    weights = [t for t in model.graph.initializer if t.data_type in floats]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    edges = {
        v.name: v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]
    }
    assert edges["values"] == edges["scores"] == onnx.TensorProto.FLOAT
    loaded = load_checkpoint(tiny_checkpoint)
    graph = ScoringGraph(loaded.model.scoring_module(), loaded.items.ids, 5)
    n = len(loaded.items)
    rng = np.random.default_rng(0)
    ratings = np.where(rng.random((64, n)) < 0.2, rng.integers(1, 6, (64, n)), 0).astype(np.float32)
    ratings[:, 0] = 4
    ratings[1] = 3  # all but two
    ratings[1, [2, 5]] = 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    scores, items = session.run(["scores", "items"], feed_of(ratings))
    assert scores.dtype == np.float32
    _, want = dense_reference(graph, ratings)
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(items, want, strict=True)])
    assert overlap >= 0.9
    columns = np.searchsorted(loaded.items.ids, items)
    assert not (np.take_along_axis(ratings, columns, axis=1) != 0)[np.isfinite(scores)].any()
    assert sorted(columns[1][np.isfinite(scores[1])]) == [2, 5]


def test_unknown_precision_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from aerec.errors import InputError

    with pytest.raises(InputError, match="--precision 'fp8'"):
        export_onnx(tiny_checkpoint, tmp_path / "m.onnx", precision="fp8")
    assert not (tmp_path / "m.onnx").exists()
