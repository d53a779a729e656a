"""Export a checkpoint's scoring graph to a self-describing, verified ONNX file."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from aerec import __version__
from aerec.contracts import (
    GRAPH_INPUTS,
    GRAPH_ITEM_TABLE,
    GRAPH_OUTPUTS,
    INPUT_FORMAT,
    MODEL_ITEM_COUNTS,
    MODEL_META,
    PRECISIONS,
    item_ids_digest,
)
from aerec.data.csr import CsrMatrix
from aerec.data.idmap import IdMap
from aerec.errors import AerecError, InputError
from aerec.export.graph import ScoringGraph
from aerec.export.quantize import REDUCED, quantize_int8, to_float16
from aerec.io.atomic import atomic_path
from aerec.io.outputs import check_disjoint, check_output_file
from aerec.score.batch import UserBatch, graph_feed
from aerec.train.checkpoint import Checkpoint, load_checkpoint

log = logging.getLogger(__name__)

# ONNX Runtime 1.20+ implements opset 21; 18 is well inside what every supported ORT runs.
OPSET = 18
# A reduced-precision graph's top k must share this much with the float32 network's on
# the check batch.
MIN_REDUCED_OVERLAP = 0.9


def _example_batch(n_items: int, batch: int, seed: int) -> UserBatch:
    """Random users who rated about 5% of the items (at least one each) 1..5."""
    rng = np.random.default_rng(seed)
    rated = rng.random((batch, n_items)) < 0.05
    rated[np.arange(batch), rng.integers(0, n_items, batch)] = True
    dense = np.where(rated, rng.integers(1, 6, (batch, n_items)), 0).astype(np.float32)
    rows, columns = np.nonzero(dense)
    matrix = CsrMatrix.from_indices(rows, columns, dense[rows, columns], batch, n_items)
    return UserBatch(np.arange(batch, dtype=np.int64), matrix)


# The exporter warns once per torchvision op that torchvision is not installed: aerec's
# graph uses none of them, so those lines say nothing to a user.
_REGISTRATION_LOG = logging.getLogger("torch.onnx._internal.exporter._registration")


def _trace(graph: ScoringGraph, n_items: int, path: Path) -> None:
    _REGISTRATION_LOG.setLevel(logging.ERROR)
    example = graph_feed(_example_batch(n_items, 4, seed=1))
    batch, width = torch.export.Dim("batch", min=1), torch.export.Dim("width", min=1)
    names = list(GRAPH_INPUTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            tuple(torch.from_numpy(example[name]) for name in names),
            dynamo=True,
            opset_version=OPSET,
            input_names=names,
            output_names=list(GRAPH_OUTPUTS),
            dynamic_shapes={name: {0: batch, 1: width} for name in names},
            verbose=False,
        )
    if program is None:
        raise AerecError("torch.onnx.export returned no program")
    program.save(str(path))


def dense_reference(graph: ScoringGraph, ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the graph must compute, from the network's dense forward pass in torch."""
    with torch.no_grad():
        dense = torch.from_numpy(ratings)
        predicted = graph.model(dense).masked_fill(dense != 0, float("-inf"))
        scores, index = torch.topk(predicted, graph.k, dim=1)
    return scores.numpy(), graph.item_ids[index].numpy()


def verify_against_torch(
    path: Path, graph: ScoringGraph, n_items: int, seed: int = 0, precision: str = "fp32"
) -> None:
    """onnx.checker on the file, then ORT on a seeded batch of entries must agree with the
    network's dense forward pass in torch (so the sparse first layer is checked too): to
    float32 rounding, or for an fp16 or int8 graph, in MIN_REDUCED_OVERLAP of each top k
    and never ranking a rated item."""
    onnx.checker.check_model(str(path), full_check=True)
    batch = _example_batch(n_items, 8, seed)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scores, items = session.run(list(GRAPH_OUTPUTS), graph_feed(batch))
    dense = batch.ratings.densify(np.arange(batch.ratings.n_rows))
    want_scores, want_items = dense_reference(graph, dense)
    if precision in REDUCED:
        shared = [len(set(a) & set(b)) / len(a) for a, b in zip(items, want_items, strict=True)]
        if np.mean(shared) < MIN_REDUCED_OVERLAP:
            raise AssertionError(f"{precision} top-{graph.k} overlap {np.mean(shared):.3f}")
        columns = IdMap(graph.item_ids.numpy()).index(items)
        rated = np.take_along_axis(dense, columns, axis=1) != 0
        if (rated & np.isfinite(scores)).any():
            raise AssertionError(f"the {precision} graph ranks an item the user rated")
        return
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-5)
    # Items must agree wherever the score is not tied with a neighbour.
    with np.errstate(invalid="ignore"):  # -inf minus -inf where k reaches rated items
        gaps = np.abs(np.diff(want_scores, axis=1)) > 1e-4
    untied = np.ones_like(gaps[:, :1])
    clear = np.concatenate([untied, gaps], axis=1) & np.concatenate([gaps, untied], axis=1)
    np.testing.assert_array_equal(items[clear], want_items[clear])


def _name_item_table(proto: onnx.ModelProto, item_ids: np.ndarray) -> None:
    """Give the initializer the graph gathers item ids from its contract name, so a scorer
    can check it against the metadata's table."""
    graph = proto.graph
    tables = [
        tensor
        for tensor in graph.initializer
        if tensor.data_type == onnx.TensorProto.INT64
        and list(tensor.dims) == [len(item_ids)]
        and np.array_equal(onnx.numpy_helper.to_array(tensor), item_ids)
    ]
    if len(tables) != 1:
        raise AerecError(f"the traced graph holds {len(tables)} item id tables, expected 1")
    old = tables[0].name
    tables[0].name = GRAPH_ITEM_TABLE
    for node in graph.node:
        node.input[:] = [GRAPH_ITEM_TABLE if name == old else name for name in node.input]


def _metadata(loaded: Checkpoint, version: str, k: int, precision: str) -> dict[str, str]:
    """The graph's aerec metadata (contracts.MODEL_META)."""
    ids = loaded.items.ids
    counts = loaded.item_counts
    return {
        MODEL_META["version"]: version,
        MODEL_META["n_items"]: str(len(ids)),
        MODEL_META["k"]: str(k),
        MODEL_META["item_ids"]: json.dumps(ids.tolist(), separators=(",", ":")),
        MODEL_META["item_ids_sha256"]: item_ids_digest(ids),
        MODEL_META["metrics"]: json.dumps(loaded.metrics.get("test", {})),
        MODEL_META["aerec_version"]: __version__,
        MODEL_META["input_format"]: INPUT_FORMAT,
        MODEL_META["score"]: loaded.model.score_meaning,
        MODEL_META["precision"]: precision,
        **(
            {MODEL_ITEM_COUNTS: json.dumps(counts.tolist(), separators=(",", ":"))}
            if counts is not None
            else {}
        ),
    }


def export_onnx(
    checkpoint: str | Path, out: str | Path, k: int = 10, precision: str = "fp32"
) -> dict[str, str]:
    """Write the scoring graph of `checkpoint` to `out` (atomically); return its metadata.

    `precision` "fp16" computes in float16, "int8" stores the dense layers' weights as int8
    (aerec.export.quantize).
    """
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    check_output_file(out)
    check_disjoint([out], [checkpoint])
    loaded = load_checkpoint(checkpoint)
    try:
        module = loaded.model.scoring_module()
    except InputError as error:
        raise InputError(f"{checkpoint}: preset {loaded.config.get('preset')}: {error}") from None
    n_items = len(loaded.items)
    if k > n_items:
        raise InputError(f"--k {k}: {checkpoint} knows only {n_items} items")
    graph = ScoringGraph(module, loaded.items.ids, k).eval()
    with atomic_path(out) as temporary:
        _trace(graph, n_items, temporary)
        proto = onnx.load(str(temporary))
        _name_item_table(proto, loaded.items.ids)
        if precision == "int8":
            proto = quantize_int8(proto)
        elif precision == "fp16":
            proto = to_float16(proto)
        version = hashlib.sha256(proto.SerializeToString(deterministic=True)).hexdigest()
        metadata = _metadata(loaded, version, graph.k, precision)
        onnx.helper.set_model_props(proto, metadata)
        proto.producer_name = "aerec"
        onnx.save(proto, str(temporary))
        try:
            verify_against_torch(temporary, graph, n_items, precision=precision)
        except (AssertionError, onnx.checker.ValidationError) as error:
            detail = " ".join(str(error).split())[:300]
            raise AerecError(f"{out}: verification failed, nothing written ({detail})") from None
    log.info(
        "wrote %s: %d items, k=%d, %s, model version %s",
        out,
        n_items,
        graph.k,
        precision,
        version[:12],
    )
    return metadata
