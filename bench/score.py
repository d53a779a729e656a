"""score-all speed and memory, against the hardware limit measured in the same run.

    .venv/bin/python bench/score.py [--data ../shared/data] [--chunk-rows N] [--repeat 3]
        [--only ml100k|synthetic|host|scaling|profile|precision]

- limit: users/s of the decoder's dense product alone, numpy float32
  [batch, hidden] @ [hidden, n_items], best of 20 before and 20 after the children, in
  this process: the one product a scoring pass cannot avoid;
- score-all: a fresh child process runs it end to end (read, score, write, publish),
  `--repeat` times with the reader overlapped with scoring (the median run is reported,
  every run's seconds beside it) and once without; seconds, users/s, peak RSS, and
  users/s as a ratio of the limit;
- PyTorch peer: the same checkpoint in torch (inference_mode forward, mask, torch.topk),
  rows written with the same Parquet sink score-all uses;
- scaling: 50,000 and 500,000 synthetic users over the same 20,000 items, 100 ratings
  each: peak RSS and seconds of each, their ratios, and the RSS sampled every second;
- host: score-all on the ML-25M shape with a scorer that builds each batch's graph
  inputs and returns fixed rows instead of running the graph: users/s of the host
  pipeline alone (read, group, pad, write, hash), the median of `--repeat` runs;
- profile: ONNX Runtime's own profile of one batch on the ML-25M-shaped model, ms per op;
- health: the health figures' own work (the tally the writers keep as rows pass, and the
  figures at publication) repeated on the ML-25M-shaped run's written table, fed in the
  slices score-all writes, as a share of that run's score-all seconds;
- precision: `export-onnx --precision fp16` and `int8` against fp32: NDCG@10 on ML-100K
  u1.test of the default model trained on u1.base, each graph's top 10 through the same
  metric code, and the share of each user's top 10 each agrees on with fp32's; ONNX
  Runtime's CPU MatMul of the decoder's shape in float32 and float16; the synthetic run
  also scores with the int8 graph (its users/s over the same float32 limit).

ML-100K uses a model trained for real; the synthetic files use untrained default-preset
models of their shape (timing does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from aerec.contracts import PRECISIONS
from aerec.data.stream import CHUNK_ROWS

OUT = Path(__file__).resolve().parent / "out"
ML25M_SHAPE = (162_541, 59_047, 25_000_095)
SCALING_USERS = (50_000, 500_000)
SCALING_ITEMS, SCALING_PER_USER = 20_000, 100


def peak_rss_gb() -> float:
    """This process's peak RSS: VmHWM, which, unlike ru_maxrss, does not carry the parent's
    high-water mark across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def current_rss_gb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024**3


def child_score_all(
    model: str,
    ratings: str,
    out: str,
    batch: int,
    overlap: bool,
    chunk_rows: int,
    gates: Any = None,
) -> dict:
    """score-all in this process, its RSS sampled every second while it runs."""
    from aerec.io.sinks import FileSink
    from aerec.score.engines.local import LocalEngine
    from aerec.score.job import ScoreRequest
    from aerec.score.pipeline import score_all

    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            samples.append(current_rss_gb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    request = ScoreRequest(
        Path(model),
        Path(ratings),
        batch_size=batch,
        device="cpu",
        gates=gates or untrained_lists(),
    )
    manifest = score_all(request, FileSink(out), LocalEngine(overlap, chunk_rows))
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {
        "seconds": seconds,
        "users": manifest["users"],
        "rows": manifest["rows"],
        "peak_rss_gb": peak_rss_gb(),
        "rss_samples_gb": samples,
    }


def child_host(model: str, ratings: str, out: str, batch: int, chunk_rows: int) -> dict:
    """score-all with a scorer that builds each batch's graph inputs and returns fixed
    rows (the model's last k items, scores k..1) without running the graph: the host
    pipeline alone (read, group, pad, write, hash, publish)."""
    from aerec.score.batch import UserBatch, graph_feed
    from aerec.score.engines import local
    from aerec.score.scorer import BatchScorer

    class FixedRows(BatchScorer):
        def __call__(self, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
            graph_feed(batch)  # the padded inputs a graph would be given
            users, k = len(batch.user_ids), self.info.k
            scores = np.tile(np.arange(k, 0, -1, dtype=np.float32), (users, 1))
            return scores, np.tile(self.info.items.ids[-k:], (users, 1))

    local.BatchScorer = FixedRows  # type: ignore[misc]
    return child_score_all(model, ratings, out, batch, True, chunk_rows)  # lists alike


def untrained_lists() -> Any:
    """The gates of a run of an untrained model: its lists share their items, by chance
    of its random weights, so the item-share gate is off; the others stand."""
    from aerec.score.job import Gates

    return Gates(max_item_share=1.0)


def child_profile(model: str, batch: int, per_user: int = 150) -> dict:
    """ONNX Runtime's profile of one batch of users with `per_user` ratings: ms per op type."""
    import onnxruntime as ort

    from aerec.data.csr import CsrMatrix
    from aerec.score.batch import UserBatch, graph_feed
    from aerec.score.session import open_session

    _, info, _ = open_session(model, "cpu")
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(batch), per_user)
    columns = np.concatenate(
        [rng.choice(len(info.items), per_user, replace=False) for _ in range(batch)]
    )
    matrix = CsrMatrix.from_indices(rows, columns, np.full(rows.size, 4.0), batch, len(info.items))
    feed = graph_feed(UserBatch(np.arange(batch), matrix))
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.enable_profiling = True
    options.profile_file_prefix = str(OUT / "ort-profile")
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    runs = 8
    for _ in range(runs):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    per_op: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            per_op[op] = per_op.get(op, 0.0) + event["dur"] / 1000 / runs
    return dict(sorted(per_op.items(), key=lambda item: -item[1]))


def child_torch(checkpoint: str, ratings: str, out: str, batch: int, k: int = 10) -> dict:
    """The torch peer: forward + mask + topk in inference mode, the same Parquet sink."""
    import polars as pl
    import torch

    from aerec.contracts import RECS_SCHEMA
    from aerec.data.readers import read_ratings
    from aerec.io.sinks import ParquetFileWriter
    from aerec.score.vectors import build_user_vectors
    from aerec.train.checkpoint import load_checkpoint

    torch.set_num_threads(2)
    started = time.perf_counter()
    loaded = load_checkpoint(checkpoint)
    vectors = build_user_vectors(read_ratings(ratings), loaded.items)
    matrix, ids = vectors.ratings, torch.from_numpy(loaded.items.ids)
    sink = ParquetFileWriter(out, {})
    with torch.inference_mode():
        for start in range(0, matrix.n_rows, batch):
            rows = np.arange(start, min(start + batch, matrix.n_rows))
            dense = torch.from_numpy(matrix.densify(rows))
            scores = loaded.model.network(dense).masked_fill(dense != 0, float("-inf"))
            top, index = torch.topk(scores, k, dim=1)
            keep = torch.isfinite(top).numpy().ravel()
            frame = {
                "user_id": np.repeat(vectors.users.ids[rows], k)[keep],
                "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(rows))[keep],
                "item_id": ids[index].numpy().ravel()[keep],
                "score": top.numpy().ravel()[keep],
            }
            rows_of_batch = pl.DataFrame(frame).with_columns(source=pl.lit("model"))
            sink.write(rows_of_batch.cast(pl.Schema(RECS_SCHEMA)))
    written = sink.close()
    return {
        "seconds": time.perf_counter() - started,
        "rows": written.rows,
        "peak_rss_gb": peak_rss_gb(),
    }


def decoder_limit(checkpoint: Path, batch: int, repeats: int = 20) -> float:
    """Users/s of the decoder's dense product alone, in numpy float32 (best of `repeats`:
    the machine's rate when nothing else runs)."""
    config = json.loads((checkpoint / "config.json").read_text())["model"]
    hidden, n_items = config["hidden"][0], config["n_items"]
    rng = np.random.default_rng(0)
    codes = rng.random((batch, hidden), dtype=np.float32)
    weights = rng.random((hidden, n_items), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        codes @ weights
        best = min(best, time.perf_counter() - started)
    return batch / best


def in_child(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def repeated(times: int, *args: str) -> dict:
    """The child run of median seconds among `times` runs, with every run's seconds."""
    runs = [in_child(*args) for _ in range(times)]
    median = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
    return {**median, "runs_seconds": [run["seconds"] for run in runs]}


def runs(result: dict) -> str:
    """A repeated run's seconds, as printed."""
    return ", ".join(f"{seconds:.1f}" for seconds in result["runs_seconds"]) + " s"


def prepare_ml100k(data: Path, work: Path) -> tuple[Path, Path, Path]:
    from aerec.export.onnx_export import export_onnx
    from aerec.train.pipeline import TrainOptions, train_model

    ratings = data / "ml-100k" / "u.data"
    checkpoint = work / "ml100k-checkpoint"
    train_model(
        ratings, checkpoint, "user-temporal:0.2", TrainOptions(device="cpu", baselines=False)
    )
    export_onnx(checkpoint, work / "ml100k.onnx", k=10)
    return ratings, checkpoint, work / "ml100k.onnx"


def prepare_synthetic(work: Path, users: int, items: int, count: int) -> tuple[Path, Path, Path]:
    """A synthetic ratings file and an untrained default-shaped model over its items
    (exported in float32, and in int8 beside it as NAME-int8.onnx)."""
    import polars as pl
    import torch

    from aerec.data.idmap import IdMap
    from aerec.data.synth import SynthConfig, write_synthetic
    from aerec.export.onnx_export import export_onnx
    from aerec.train.checkpoint import save_checkpoint
    from aerec.train.kinds.multinomial import MultinomialAutoEncoder
    from aerec.train.presets import PRESETS

    name = f"synth-{users}-{items}-{count}"
    ratings = OUT / name / "ratings.csv"
    if not ratings.exists():
        write_synthetic(SynthConfig(users, items, count, seed=0, half_stars=True), ratings)
    item_map = IdMap.from_ids(pl.scan_csv(ratings).select("movieId").unique().collect().to_series())
    torch.manual_seed(0)  # the same untrained weights every run
    model = MultinomialAutoEncoder(PRESETS["default"].model_config(len(item_map)))
    checkpoint = work / f"{name}-checkpoint"
    save_checkpoint(checkpoint, model, item_map, {"preset": "default (untrained)"}, {}, "epoch\n")
    export_onnx(checkpoint, work / f"{name}.onnx", k=10)
    export_onnx(checkpoint, work / f"{name}-int8.onnx", k=10, precision="int8")
    return ratings, checkpoint, work / f"{name}.onnx"


def half_precision_product(items: int = ML25M_SHAPE[1], batch: int = 512) -> dict[str, float]:
    """ms of ONNX Runtime's CPU MatMul of the decoder's shape in float32 and float16 (best
    of 5): whether an fp16 graph could be faster on this CPU."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    result = {}
    for name, kind, dtype in (
        ("fp32", TensorProto.FLOAT, np.float32),
        ("fp16", TensorProto.FLOAT16, np.float16),
    ):
        weight = numpy_helper.from_array(rng.standard_normal((200, items)).astype(dtype), "w")
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])],
            "decoder",
            [helper.make_tensor_value_info("x", kind, [None, 200])],
            [helper.make_tensor_value_info("y", kind, [None, items])],
            [weight],
        )
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        proto.ir_version = 9
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        session = ort.InferenceSession(
            proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        x = rng.standard_normal((batch, 200)).astype(dtype)
        session.run(None, {"x": x})
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            session.run(None, {"x": x})
            best = min(best, time.perf_counter() - started)
        result[name] = best * 1000
    return result


BF16_OPS = ("MatMul", "Gemm", "Add", "Mul", "Tanh", "Sigmoid", "ReduceSum", "TopK")


def bf16_refused() -> dict[str, str]:
    """The ops of the scoring graph that ONNX Runtime's CPU provider cannot load in
    bfloat16 (one single-op graph each), with the first words of its error."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    refused = {}
    for op in BF16_OPS:
        inputs = ["a", "b"] if op in ("MatMul", "Gemm", "Add", "Mul") else ["a"]
        values = [helper.make_tensor_value_info(n, TensorProto.BFLOAT16, None) for n in inputs]
        outputs = [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, None)]
        initializers = []
        if op == "TopK":
            inputs.append("k")
            initializers.append(helper.make_tensor("k", TensorProto.INT64, [1], [2]))
            outputs.append(helper.make_tensor_value_info("i", TensorProto.INT64, None))
        node = helper.make_node(op, inputs, [o.name for o in outputs])
        graph = helper.make_graph([node], op, values, outputs, initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception as error:  # ORT's load errors share no base
            refused[op] = str(error).split(" : ")[-1][:60]
    return refused


def precision_quality(data: Path, work: Path) -> dict:
    """NDCG@10 on ML-100K u1.test of the default model's fp32, fp16 and int8 graphs, and
    how much of each user's top 10 the reduced ones share with fp32's."""
    import onnxruntime as ort

    from aerec.data.split import load_split
    from aerec.export.onnx_export import export_onnx
    from aerec.score.batch import UserBatch, graph_feed
    from aerec.train.pipeline import TrainOptions, eval_data, train_model

    ratings, spec = data / "ml-100k" / "u.data", "files:u1.base,u1.test"
    checkpoint = work / "u1-checkpoint"
    train_model(ratings, checkpoint, spec, TrainOptions(device="cpu", baselines=False))
    split, item_map = eval_data(load_split(ratings, spec, 0), 0)
    results: dict[str, Any] = {}
    tops: dict[str, np.ndarray] = {}
    for precision in PRECISIONS:
        model = work / f"u1-{precision}.onnx"
        export_onnx(checkpoint, model, k=10, precision=precision)
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])

        def block(rows: np.ndarray, session: ort.InferenceSession = session) -> np.ndarray:
            """The graph's top 10 as dense scores: 10 - rank there, -inf elsewhere."""
            batch = UserBatch(rows.astype(np.int64), split.train.take(rows))
            _, items = session.run(["scores", "items"], graph_feed(batch))
            columns = item_map.index(items.ravel()).reshape(items.shape)
            dense = np.full((len(rows), split.train.n_cols), -np.inf)
            np.put_along_axis(dense, columns, np.arange(10, 0, -1, dtype=np.float64), axis=1)
            return dense

        metrics = split.ranking(block, 10)
        users = np.flatnonzero(split.train.row_counts())
        tops[precision] = np.argsort(-block(users), axis=1)[:, :10]
        results[precision] = {"ndcg@10": metrics["ndcg@10"], "recall@10": metrics["recall@10"]}
    for precision in PRECISIONS[1:]:
        pairs = zip(tops["fp32"], tops[precision], strict=True)
        shared = [len(set(a) & set(b)) / 10 for a, b in pairs]
        ratio = results[precision]["ndcg@10"] / results["fp32"]["ndcg@10"]
        results[precision].update(top10_overlap=float(np.mean(shared)), ndcg_ratio=ratio)
    return results


def compare_with_dense(checkpoint: Path, ratings: Path, recs: Path) -> dict:
    """score-all's table against the network's dense forward pass (the graph before the
    sparse input) for every user: same items at every rank whose score is not tied."""
    import polars as pl

    from aerec.data.readers import read_ratings
    from aerec.export.graph import ScoringGraph
    from aerec.export.onnx_export import dense_reference
    from aerec.score.vectors import build_user_vectors
    from aerec.train.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    vectors = build_user_vectors(read_ratings(ratings), loaded.items)
    graph = ScoringGraph(loaded.model.scoring_module(), loaded.items.ids, 10)
    want_scores, want_items = dense_reference(
        graph, vectors.ratings.densify(np.arange(len(vectors.users)))
    )
    table = pl.read_parquet(recs).sort("user_id", "rank")
    got_items = table["item_id"].to_numpy().reshape(-1, 10)
    got_scores = table["score"].to_numpy().reshape(-1, 10)
    gaps = np.abs(np.diff(want_scores, axis=1)) > 1e-5
    edge = np.ones((len(gaps), 1), dtype=bool)
    untied = np.concatenate([edge, gaps], axis=1) & np.concatenate([gaps, edge], axis=1)
    same = ((got_items == want_items) | ~untied).all(axis=1)
    return {
        "users": len(same),
        "users_identical_top10": int(same.sum()),
        "max_score_difference": float(np.abs(got_scores - want_scores).max()),
    }


def health_cost(recs: Path, model: Path, rows_per_write: int = 65_000) -> float:
    """Seconds of the health tally and figures over the table at `recs`, fed in slices of
    about `rows_per_write` rows cut at user boundaries, as the writers see them."""
    import polars as pl

    from aerec.io.tally import Tally
    from aerec.score.health import health_figures
    from aerec.score.session import ModelFile, describe_model

    table = pl.read_parquet(recs)
    starts = np.flatnonzero(np.diff(table["user_id"].to_numpy(), prepend=-1) != 0)
    users_per_write = rows_per_write // 10  # k = 10 rows a user
    cuts = [*starts[users_per_write::users_per_write].tolist(), table.height]
    info = describe_model(ModelFile.read(model))
    started = time.perf_counter()
    tally, begin = Tally(), 0
    for end in cuts:
        tally.observe(table.slice(begin, end - begin))
        begin = end
    users = table["user_id"].n_unique()
    health_figures(tally, users, info.items, info.item_counts, "x", info.version, 10, None)
    return time.perf_counter() - started


def bench(
    name: str,
    ratings: Path,
    checkpoint: Path,
    model: Path,
    args: argparse.Namespace,
) -> dict:
    batch, chunk_rows = args.batch_size, args.chunk_rows
    out = str(OUT / f"{name}-recs" / "recs.parquet")
    before = decoder_limit(checkpoint, batch)
    run = ("score", str(model), str(ratings), out, str(batch))
    overlapped = repeated(args.repeat, *run, "1", str(chunk_rows))
    serial = in_child(*run, "0", str(chunk_rows))
    peer = in_child(
        "torch", str(checkpoint), str(ratings), str(OUT / f"{name}-torch.parquet"), str(batch)
    )
    limit = max(before, decoder_limit(checkpoint, batch))  # measured before and after
    users_per_s = overlapped["users"] / overlapped["seconds"]
    return {
        "score_all": overlapped,
        "score_all_no_overlap": serial,
        "torch_peer": peer,
        "users_per_s": users_per_s,
        "limit_users_per_s": limit,
        "ratio_to_limit": users_per_s / limit,
        "overlap_speedup": serial["seconds"] / overlapped["seconds"],
        "speedup_vs_torch": peer["seconds"] / overlapped["seconds"],
    }


def scaling(work: Path, batch: int, chunk_rows: int) -> dict:
    points = {}
    for users in SCALING_USERS:
        ratings, _, model = prepare_synthetic(work, users, SCALING_ITEMS, users * SCALING_PER_USER)
        out = str(OUT / f"scaling-{users}" / "recs.parquet")
        points[users] = in_child(
            "score", str(model), str(ratings), out, str(batch), "1", str(chunk_rows)
        )
    small, large = (points[u] for u in SCALING_USERS)
    return {
        "points": points,
        "rss_ratio": large["peak_rss_gb"] / small["peak_rss_gb"],
        "seconds_ratio": large["seconds"] / small["seconds"],
        "users_ratio": SCALING_USERS[1] / SCALING_USERS[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--only", choices=["ml100k", "synthetic", "host", "scaling", "profile", "precision"]
    )
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="score-all's chunk")
    parser.add_argument(
        "--repeat", type=int, default=3, help="score-all and host runs each (the median is kept)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "score":
            result = child_score_all(
                rest[0], rest[1], rest[2], int(rest[3]), rest[4] == "1", int(rest[5])
            )
        elif kind == "profile":
            result = child_profile(rest[0], int(rest[1]))
        elif kind == "host":
            result = child_host(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]))
        else:
            result = child_torch(rest[0], rest[1], rest[2], int(rest[3]))
        print(json.dumps(result))
        return
    work = OUT / "score-models"
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if args.only in (None, "ml100k"):
        ratings, checkpoint, model = prepare_ml100k(args.data, work)
        results["ML-100K"] = bench("ml100k", ratings, checkpoint, model, args)
        unchanged = compare_with_dense(checkpoint, ratings, OUT / "ml100k-recs" / "recs.parquet")
        results["ML-100K"]["unchanged"] = unchanged
        print(
            f"ML-100K: {unchanged['users_identical_top10']} of {unchanged['users']} users have "
            "the dense network's top 10 (ties aside); largest score difference "
            f"{unchanged['max_score_difference']:.1e}"
        )
    if args.only in (None, "synthetic"):
        ratings, checkpoint, model = prepare_synthetic(work, *ML25M_SHAPE)
        synthetic = bench("synthetic", ratings, checkpoint, model, args)
        results["synthetic ML-25M shape"] = synthetic
        health = health_cost(OUT / "synthetic-recs" / "recs.parquet", model)
        synthetic["health_seconds"] = health
        share = health / synthetic["score_all"]["seconds"]
        print(f"synthetic ML-25M shape: health figures {health:.2f} s = {share:.1%} of score-all")
        int8 = model.with_name(model.stem + "-int8.onnx")
        out = str(OUT / "synthetic-int8-recs" / "recs.parquet")
        quantized = repeated(
            args.repeat,
            *(
                "score",
                str(int8),
                str(ratings),
                out,
                str(args.batch_size),
                "1",
                str(args.chunk_rows),
            ),
        )
        synthetic["int8"] = quantized
        users_per_s = quantized["users"] / quantized["seconds"]
        print(
            f"synthetic ML-25M shape, int8 graph: {quantized['seconds']:.1f} s, "
            f"{users_per_s:,.0f} users/s = {users_per_s / synthetic['limit_users_per_s']:.2f} "
            f"of the float32 limit, peak RSS {quantized['peak_rss_gb']:.2f} GB "
            f"(median of {runs(quantized)})"
        )
    print(
        "| data | users | score-all s | users/s | limit users/s | ratio | peak RSS GB | "
        "no overlap s | torch peer s | speed-up |"
    )
    print("| --- " * 10 + "|")
    for name, r in results.items():
        ours = r["score_all"]
        print(
            f"| {name} | {ours['users']:,} | {ours['seconds']:.1f} | {r['users_per_s']:,.0f} | "
            f"{r['limit_users_per_s']:,.0f} | {r['ratio_to_limit']:.2f} | "
            f"{ours['peak_rss_gb']:.2f} | {r['score_all_no_overlap']['seconds']:.1f} | "
            f"{r['torch_peer']['seconds']:.1f} | {r['speedup_vs_torch']:.2f}x |"
        )
        print(f"  {name}: score-all is the median of {runs(ours)}")
    if args.only in (None, "scaling"):
        results["scaling"] = scale = scaling(work, args.batch_size, args.chunk_rows)
        for users, point in scale["points"].items():
            samples = point["rss_samples_gb"]
            middle = samples[len(samples) // 4 : max(3 * len(samples) // 4, 1)]
            print(
                f"scaling: {users:,} users: {point['seconds']:.1f} s, "
                f"{point['peak_rss_gb']:.2f} GB peak RSS; RSS over the middle half of the run "
                f"between {min(middle):.2f} and {max(middle):.2f} GB"
            )
        print(
            f"scaling: {scale['users_ratio']:.0f}x users -> {scale['seconds_ratio']:.2f}x "
            f"seconds, {scale['rss_ratio']:.2f}x peak RSS"
        )
    if args.only in (None, "precision"):
        results["precision"] = quality = precision_quality(args.data, work)
        quality["half_product_ms"] = half = half_precision_product()
        quality["bf16_refused"] = refused = bf16_refused()
        print(f"bf16 ops the CPU provider cannot load: {', '.join(refused) or 'none'}")
        print(
            f"ONNX Runtime CPU MatMul [512, 200] @ [200, 59,047]: float32 {half['fp32']:.1f} ms, "
            f"float16 {half['fp16']:.1f} ms"
        )
        print(f"ML-100K u1, default model: NDCG@10 fp32 {quality['fp32']['ndcg@10']:.4f}")
        for precision in PRECISIONS[1:]:
            q = quality[precision]
            print(
                f"  {precision}: NDCG@10 {q['ndcg@10']:.4f} ({q['ndcg_ratio']:.4f} of fp32), "
                f"top-10 overlap with fp32 {q['top10_overlap']:.3f}"
            )
    if args.only in (None, "host"):
        ratings, _, model = prepare_synthetic(work, *ML25M_SHAPE)
        out = str(OUT / "host-recs" / "recs.parquet")
        results["host"] = host = repeated(
            args.repeat,
            *("host", str(model), str(ratings), out, str(args.batch_size), str(args.chunk_rows)),
        )
        print(
            f"host pipeline alone (fixed rows, no graph), ML-25M shape: {host['seconds']:.1f} s, "
            f"{host['users'] / host['seconds']:,.0f} users/s, "
            f"peak RSS {host['peak_rss_gb']:.2f} GB (median of {runs(host)})"
        )
    if args.only in (None, "profile"):
        _, _, model = prepare_synthetic(work, *ML25M_SHAPE)
        results["profile"] = profile = in_child("profile", str(model), str(args.batch_size))
        print(
            f"ONNX Runtime, one batch of {args.batch_size} users x 150 ratings, ms per op: "
            + ", ".join(f"{op} {ms:.1f}" for op, ms in profile.items() if ms >= 0.5)
        )
    (OUT / f"score{'-' + args.only if args.only else ''}.json").write_text(
        json.dumps(results, indent=2)
    )


if __name__ == "__main__":
    main()
