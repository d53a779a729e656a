"""The scorer trusts a model file only when its metadata agrees with its graph."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from aerec.contracts import item_ids_digest
from aerec.errors import InputError
from aerec.score.session import ModelFile, describe_model, graph_item_table, open_session


def test_graph_item_table_equals_the_metadata(tiny_model: Path) -> None:
    _, info, _ = open_session(tiny_model, "cpu")
    table = graph_item_table(onnx.load(str(tiny_model)))
    assert table is not None and np.array_equal(table, info.items.ids)


def test_the_metadata_is_read_without_a_session(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the Ray driver needs of the model comes from the graph's metadata alone."""
    from aerec.score import session

    _, opened, _ = open_session(tiny_model, "cpu")

    def no_session(*args: object, **kwargs: object) -> None:
        raise AssertionError("an inference session was opened")

    monkeypatch.setattr(session.ort, "InferenceSession", no_session)
    described = describe_model(ModelFile.read(tiny_model))
    assert (described.version, described.k, described.score) == (
        opened.version,
        opened.k,
        opened.score,
    )
    assert np.array_equal(described.items.ids, opened.items.ids)


def test_a_consistently_rewritten_item_table_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    """Metadata whose ids and hash were both changed no longer name what the graph ranks."""
    proto = onnx.load(str(tiny_model))
    meta = {prop.key: prop for prop in proto.metadata_props}
    ids = np.asarray(json.loads(meta["aerec.item_ids"].value)) + 1000
    meta["aerec.item_ids"].value = json.dumps(ids.tolist())
    meta["aerec.item_ids_sha256"].value = item_ids_digest(ids)
    forged = tmp_path / "forged.onnx"
    onnx.save(proto, str(forged))
    with pytest.raises(InputError, match="not the one the graph ranks"):
        open_session(forged, "cpu")


@pytest.mark.parametrize("k", ["3", "7"])
def test_metadata_k_that_is_not_the_graphs_is_refused(
    k: str, tiny_model: Path, tmp_path: Path
) -> None:
    """The tiny model's graph ranks its top 5; metadata saying otherwise is refused."""
    proto = onnx.load(str(tiny_model))
    next(prop for prop in proto.metadata_props if prop.key == "aerec.k").value = k
    forged = tmp_path / "forged.onnx"
    onnx.save(proto, str(forged))
    with pytest.raises(InputError, match=f"returns 5 items a user, its metadata says k={k}"):
        open_session(forged, "cpu")


def test_graph_outputs_must_be_the_contracts(tiny_model: Path, tmp_path: Path) -> None:
    proto = onnx.load(str(tiny_model))
    proto.graph.output[0].name = "renamed"
    for node in proto.graph.node:
        node.output[:] = ["renamed" if name == "scores" else name for name in node.output]
    forged = tmp_path / "forged.onnx"
    onnx.save(proto, str(forged))
    with pytest.raises(InputError, match="graph outputs"):
        open_session(forged, "cpu")


def test_a_failing_cuda_provider_is_named_not_the_model(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CUDA seen but its provider failing at load: --device cuda says CUDA failed (the
    model loads), --device auto scores on the CPU with a warning."""
    from aerec.score import session

    real = session.ort.InferenceSession

    def failing_on_cuda(data: bytes, options: object, providers: list[str]) -> object:
        if session.CUDA in providers:
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
        return real(data, options, providers=providers)

    monkeypatch.setattr(session, "cuda_usable", lambda: True)
    monkeypatch.setattr(session.ort, "InferenceSession", failing_on_cuda)
    with pytest.raises(
        InputError, match=r"--device cuda: ONNX Runtime's CUDA provider failed"
    ) as raised:
        session.open_session(tiny_model, "cuda")
    assert "not a loadable" not in str(raised.value) and "no CUDA-capable" in str(raised.value)
    _, _, provider = session.open_session(tiny_model, "auto")
    assert provider == session.CPU
