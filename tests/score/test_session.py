"""The scorer trusts a model file only when its metadata agrees with its graph."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from aerec.contracts import item_ids_digest
from aerec.errors import InputError
from aerec.score.session import graph_item_table, open_session


def test_graph_item_table_equals_the_metadata(tiny_model: Path) -> None:
    _, info, _ = open_session(tiny_model, "cpu")
    table = graph_item_table(tiny_model.read_bytes())
    assert table is not None and np.array_equal(table, info.items.ids)


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
