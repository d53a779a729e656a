"""One ONNX Runtime session per process, on CUDA where usable, and the model's metadata."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort

from aerec.contracts import (
    DEVICES,
    GRAPH_INPUTS,
    GRAPH_ITEM_TABLE,
    GRAPH_OUTPUTS,
    INPUT_FORMAT,
    MODEL_ITEM_COUNTS,
    MODEL_META,
    SCORE_MEANINGS,
    item_ids_digest,
)
from aerec.data.idmap import IdMap
from aerec.errors import InputError, file_error

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class ModelInfo:
    """What an aerec ONNX model says about itself."""

    version: str
    k: int
    items: IdMap
    metrics: dict[str, float]
    score: str  # what a score is: a key of SCORE_MEANINGS
    item_counts: np.ndarray | None = None  # ratings per item in its training data

    def rows_per_user(self, k: int | None) -> int:
        """The k a run asked for, which may not exceed the k the graph computes."""
        if k is not None and k > self.k:
            raise InputError(
                f"--k {k}: the model computes only its top {self.k}; re-export it with --k {k}"
            )
        return k or self.k


CUDA_HELP = (
    "install the CUDA build of torch, whose nvidia-* wheels hold the CUDA and cuDNN "
    "libraries (README: Installing), or pip install 'onnxruntime-gpu[cuda,cudnn]'"
)


def _missing_library(error: str) -> str | None:
    """The shared library a loader error names (`libcublasLt.so.13: cannot open ...`)."""
    found = re.search(r"(lib[\w+-]+\.so(?:\.\d+)*)", error)
    return found.group(1) if found else None


def provider_library_problem(library: Path | None = None) -> str | None:
    """Why ONNX Runtime's CUDA provider library (or `library`) does not load: the CUDA or
    cuDNN library it needs that is missing, and how to get it; None when it loads."""
    library = library or Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    try:
        ctypes.CDLL(str(library))
    except OSError as error:
        missing = _missing_library(str(error)) or _first_line(error)
        return f"{missing} does not load: {CUDA_HELP}"
    return None


def _driver_loads() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def _preload_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries from the nvidia-* wheels (torch's CUDA build ships
    them), so ONNX Runtime's CUDA provider finds them without a separate install."""
    with contextlib.redirect_stdout(io.StringIO()):  # it prints what it skips
        try:
            ort.preload_dlls(cuda=True, cudnn=True, msvc=False)
        except (OSError, RuntimeError) as error:
            log.debug("preloading the CUDA libraries: %s", _first_line(error))


@functools.cache
def cuda_problem() -> str | None:
    """Why CUDA cannot run the scoring graph here, in one line with what to install; None
    when it can (the libraries torch's CUDA build ships are loaded first)."""
    if CUDA not in ort.get_available_providers():
        return "this onnxruntime has no CUDA provider: pip install onnxruntime-gpu"
    if not _driver_loads():
        return "no NVIDIA driver on this host (libcuda.so.1 does not load)"
    _preload_cuda_libraries()
    return provider_library_problem()


def cuda_usable() -> bool:
    """ORT was built with CUDA, a CUDA driver loads on this host, and so does its CUDA
    provider with the libraries it needs."""
    return cuda_problem() is None


def _providers(device: str) -> list[str]:
    if device == "cpu":
        return [CPU]
    if cuda_usable():
        return [CUDA, CPU]
    if device == "cuda":
        raise InputError(f"--device cuda: CUDA is not usable here: {cuda_problem()}")
    return [CPU]


def graph_item_table(proto: onnx.ModelProto) -> np.ndarray | None:
    """The item ids the graph itself gathers from (its GRAPH_ITEM_TABLE initializer)."""
    for tensor in proto.graph.initializer:
        if tensor.name == GRAPH_ITEM_TABLE:
            return np.asarray(onnx.numpy_helper.to_array(tensor))
    return None


def _parsed(model: ModelFile) -> onnx.ModelProto:
    """The model's graph, or one line saying it is not a loadable ONNX model."""
    try:
        proto = onnx.load_from_string(model.data)
    except Exception as error:  # protobuf's DecodeError and onnx's own share no base
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise file_error(model.path, f"not a loadable ONNX model ({first})") from None
    if not proto.graph.node:
        raise file_error(model.path, "not a loadable ONNX model (no graph)")
    return proto


def describe_model(model: ModelFile) -> ModelInfo:
    """Parse and check the aerec metadata of a scoring graph without opening an inference
    session; refuse a model whose input contract or item table does not match."""
    path, proto = model.path, _parsed(model)
    meta = {entry.key: entry.value for entry in proto.metadata_props}
    constants = {tensor.name for tensor in proto.graph.initializer}
    inputs = tuple(node.name for node in proto.graph.input if node.name not in constants)
    if meta.get(MODEL_META["input_format"]) != INPUT_FORMAT or inputs != GRAPH_INPUTS:
        found = meta.get(MODEL_META["input_format"], "dense rating vectors")
        raise file_error(
            path,
            f"scoring graph reads {found}, this aerec reads {INPUT_FORMAT}: re-export it "
            "with export-onnx",
        )
    missing = [key for key in MODEL_META.values() if key not in meta]
    if missing:
        raise file_error(path, f"not an aerec scoring model (metadata lacks {missing[0]})")
    try:
        ids = np.asarray(json.loads(meta[MODEL_META["item_ids"]]), dtype=np.int64)
        n_items, k = int(meta[MODEL_META["n_items"]]), int(meta[MODEL_META["k"]])
        metrics = json.loads(meta[MODEL_META["metrics"]])
    except (ValueError, TypeError, OverflowError) as error:
        raise file_error(path, f"malformed aerec metadata ({error})") from None
    if ids.ndim != 1 or item_ids_digest(ids) != meta[MODEL_META["item_ids_sha256"]]:
        raise file_error(path, "item table does not match its recorded sha256")
    if len(ids) != n_items:
        problem = f"item table holds {len(ids)} items, the metadata says {n_items}"
        raise file_error(path, problem)
    table = graph_item_table(proto)
    if table is None or not np.array_equal(table, ids):
        raise file_error(path, "the metadata's item table is not the one the graph ranks")
    score = meta[MODEL_META["score"]]
    if score not in SCORE_MEANINGS:
        raise file_error(path, f"malformed aerec metadata (score {score[:20]!r})")
    if not 1 <= k <= n_items:
        raise file_error(path, f"metadata k={k} must lie between 1 and the {n_items} items")
    return ModelInfo(
        version=meta[MODEL_META["version"]],
        k=k,
        items=IdMap(ids),
        metrics=metrics,
        score=score,
        item_counts=_item_counts(path, meta, len(ids)),
    )


def _item_counts(path: Path, meta: dict[str, str], n_items: int) -> np.ndarray | None:
    """The training data's rating count of each item, when the model records them."""
    if MODEL_ITEM_COUNTS not in meta:
        return None
    try:
        counts = np.asarray(json.loads(meta[MODEL_ITEM_COUNTS]), dtype=np.int64)
    except (ValueError, TypeError, OverflowError) as error:
        raise file_error(path, f"malformed aerec metadata ({error})") from None
    if counts.shape != (n_items,) or (counts < 0).any():
        raise file_error(path, f"malformed aerec metadata ({MODEL_ITEM_COUNTS})")
    return counts


def check_outputs(path: Path, session: ort.InferenceSession, info: ModelInfo) -> None:
    """The graph returns what its metadata promises: GRAPH_OUTPUTS, each [batch, k] for
    the metadata's k (one probe user who rated the first item), the ids from its table."""
    outputs = tuple(node.name for node in session.get_outputs())
    if outputs != GRAPH_OUTPUTS:
        raise file_error(path, f"graph outputs {outputs}, expected {GRAPH_OUTPUTS}")
    probe = {
        GRAPH_INPUTS[0]: np.zeros((2, 1), dtype=np.int64),
        GRAPH_INPUTS[1]: np.ones((2, 1), dtype=np.float32),
    }
    scores, items = session.run(list(GRAPH_OUTPUTS), probe)
    want = (2, info.k)
    if scores.shape != want or items.shape != want:
        raise file_error(
            path,
            f"graph returns {scores.shape[-1]} items a user, its metadata says k={info.k}",
        )
    if not np.isin(items, info.items.ids).all():
        raise file_error(path, "graph returns item ids outside its item table")


def available_cpus() -> int:
    """CPUs this process may run on (ONNX Runtime's own default counted 1 of 2 here)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ModelFile:
    """A scoring model as read once: the file it came from and its bytes. Every session
    and check of a run uses these bytes, so a model switched or pruned meanwhile (a
    retrain) never mixes in, on this host or on a Ray cluster's actors."""

    path: Path
    data: bytes

    @staticmethod
    def read(path: str | Path) -> ModelFile:
        path = Path(path)
        if not path.is_file():
            raise file_error(path, "no such model file")
        return ModelFile(path, path.read_bytes())


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _on_cpu_after_cuda_failed(
    model: ModelFile, options: ort.SessionOptions, device: str, error: Exception
) -> ort.InferenceSession:
    """The session on the CPU when the CUDA provider failed: the model loads there, so the
    fault is CUDA's (--device cuda: an error that says so; auto: a warning)."""
    try:
        session = ort.InferenceSession(model.data, options, providers=[CPU])
    except Exception as on_cpu:
        raise file_error(model.path, f"not a loadable ONNX model ({_first_line(on_cpu)})") from None
    if device == "cuda":
        missing = _missing_library(str(error))
        cause = f"{missing} does not load: {CUDA_HELP}" if missing else _first_line(error)
        raise InputError(
            f"--device cuda: ONNX Runtime's CUDA provider failed ({cause}); "
            "the model itself loads (--device cpu scores it on the CPU)"
        )
    log.warning("the CUDA provider failed (%s); scoring on the CPU", _first_line(error))
    return session


def open_session(
    model: str | Path | ModelFile, device: str = "auto", threads: int = 0
) -> tuple[ort.InferenceSession, ModelInfo, str]:
    """Load the model once; returns the session, its metadata and the provider that runs it.

    threads 0 means one intra-op thread per available CPU.
    """
    model = model if isinstance(model, ModelFile) else ModelFile.read(model)
    if device not in DEVICES:
        raise InputError(f"--device {device!r}: expected auto, cpu or cuda")
    info = describe_model(model)
    path = model.path
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads or available_cpus()
    # no busy-waiting between batches: reading, padding and writing share these cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = _providers(device)
    try:
        session = ort.InferenceSession(model.data, options, providers=providers)
    except Exception as error:  # ORT's load errors (Fail, InvalidArgument, ...) share no base
        if CUDA not in providers:
            raise file_error(path, f"not a loadable ONNX model ({_first_line(error)})") from None
        session = _on_cpu_after_cuda_failed(model, options, device, error)
    provider = session.get_providers()[0]
    if device == "cuda" and provider != CUDA:
        raise InputError("--device cuda: ONNX Runtime could not start its CUDA provider")
    check_outputs(path, session, info)
    log.info(
        "model %s (version %s, %d items, k=%d) on %s",
        path,
        info.version[:12],
        len(info.items),
        info.k,
        provider,
    )
    return session, info, provider
