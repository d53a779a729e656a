"""score-all speed: end to end, against the matrix rate of numpy and against PyTorch eager.

    .venv/bin/python bench/score.py [--data ../shared/data] [--only ml100k|synthetic]

Two data sets, one run: ML-100K (a model trained for real) and a synthetic file of
ML-25M shape (162,541 users, 59,047 items, 25,000,095 ratings; the model has the default
preset's shape with untrained weights: timing does not depend on the weights). Each
measurement runs in a fresh child process, whose peak RSS is reported.

- score-all: end-to-end seconds (read, map, score, write, publish), users/s, peak RSS;
- arithmetic rate: the forward pass's matrix FLOPs over the seconds spent in
  session.run, as a ratio of numpy's float32 matrix product of the first layer's shape;
- PyTorch eager: the same model in torch (forward, mask, torch.topk), rows to pandas,
  pandas to Parquet; ratio of its end-to-end seconds to score-all's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
SYNTH = (162_541, 59_047, 25_000_095)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def child_score_all(model: str, ratings: str, out: str, batch: int) -> dict:
    """score-all as the CLI runs it, with the time inside session.run counted."""
    from aerec.score import scorer as scorer_module
    from aerec.score.pipeline import score_all

    inside = {"seconds": 0.0, "users": 0}
    original = scorer_module.BatchScorer.__call__

    def timed(self, ratings_block):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        result = original(self, ratings_block)
        inside["seconds"] += time.perf_counter() - started
        inside["users"] += ratings_block.ratings.n_rows
        return result

    scorer_module.BatchScorer.__call__ = timed  # type: ignore[method-assign]
    started = time.perf_counter()
    manifest = score_all(model, ratings, out, batch_size=batch, device="cpu")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "run_seconds": inside["seconds"],
        "users": manifest["users"],
        "rows": manifest["rows"],
        "peak_rss_gb": peak_rss_gb(),
    }


def child_torch_eager(checkpoint: str, ratings: str, out: str, batch: int, k: int) -> dict:
    """The obvious alternative: torch forward + torch.topk, pandas output."""
    import pandas as pd
    import torch

    from aerec.data.readers import read_ratings
    from aerec.score.vectors import build_user_vectors
    from aerec.train.checkpoint import load_checkpoint

    started = time.perf_counter()
    loaded = load_checkpoint(checkpoint)
    vectors = build_user_vectors(read_ratings(ratings), loaded.items)
    matrix, ids = vectors.ratings, torch.from_numpy(loaded.items.ids)
    frames = []
    with torch.inference_mode():
        for start in range(0, matrix.n_rows, batch):
            rows = np.arange(start, min(start + batch, matrix.n_rows))
            dense = torch.from_numpy(matrix.densify(rows))
            scores = loaded.model.network(dense).masked_fill(dense != 0, float("-inf"))
            top, index = torch.topk(scores, k, dim=1)
            frames.append(
                pd.DataFrame(
                    {
                        "user_id": np.repeat(vectors.users.ids[rows], k),
                        "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(rows)),
                        "item_id": ids[index].numpy().ravel(),
                        "score": top.numpy().ravel(),
                    }
                )
            )
    table = pd.concat(frames, ignore_index=True)
    table = table[np.isfinite(table["score"])]
    table.to_parquet(out, index=False)
    return {
        "seconds": time.perf_counter() - started,
        "rows": len(table),
        "peak_rss_gb": peak_rss_gb(),
    }


def numpy_matmul_rate(n_items: int, hidden: int, batch: int, repeats: int = 5) -> float:
    """Best float32 FLOP/s of [batch, n_items] @ [n_items, hidden] in numpy."""
    rng = np.random.default_rng(0)
    a = rng.random((batch, n_items), dtype=np.float32)
    b = rng.random((n_items, hidden), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2.0 * batch * n_items * hidden / best


def forward_flops(checkpoint: Path) -> tuple[int, int]:
    """Matrix FLOPs of one user's forward pass, and the first layer's width."""
    config = json.loads((checkpoint / "config.json").read_text())["model"]
    sizes = [config["n_items"], *config["hidden"]]
    per_user = sum(2 * 2 * a * b for a, b in itertools.pairwise(sizes))
    return per_user, sizes[1]


def in_child(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def prepare_ml100k(data: Path, work: Path) -> tuple[Path, Path, Path]:
    from aerec.export.onnx_export import export_onnx
    from aerec.train.pipeline import train_model

    ratings = data / "ml-100k" / "u.data"
    checkpoint = work / "ml100k-checkpoint"
    train_model(ratings, checkpoint, split="user-temporal:0.2", device="cpu", baselines=False)
    export_onnx(checkpoint, work / "ml100k.onnx", k=10)
    return ratings, checkpoint, work / "ml100k.onnx"


def prepare_synthetic(work: Path) -> tuple[Path, Path, Path]:
    """The shared ML-25M-shaped file and an untrained default-shaped model over its items."""
    import polars as pl

    from aerec.data.idmap import IdMap
    from aerec.data.synth import SynthConfig, write_synthetic
    from aerec.export.onnx_export import export_onnx
    from aerec.train.checkpoint import save_checkpoint
    from aerec.train.presets import PRESETS
    from aerec.train.recommender import recommender_for

    users, items, count = SYNTH
    ratings = OUT / f"synth-{users}-{items}-{count}" / "ratings.csv"
    if not ratings.exists():
        write_synthetic(SynthConfig(users, items, count, seed=0, half_stars=True), ratings)
    item_map = IdMap.from_ids(pl.scan_csv(ratings).select("movieId").unique().collect().to_series())
    model = recommender_for(PRESETS["default"].model_config(len(item_map)))
    checkpoint = work / "synthetic-checkpoint"
    save_checkpoint(checkpoint, model, item_map, {"preset": "default (untrained)"}, {}, "epoch\n")
    export_onnx(checkpoint, work / "synthetic.onnx", k=10)
    return ratings, checkpoint, work / "synthetic.onnx"


def bench(name: str, ratings: Path, checkpoint: Path, model: Path, batch: int) -> dict:
    ours = in_child(
        "score", str(model), str(ratings), str(OUT / f"{name}-recs" / "recs.parquet"), str(batch)
    )
    eager = in_child(
        "torch", str(checkpoint), str(ratings), str(OUT / f"{name}-torch.parquet"), str(batch)
    )
    per_user, hidden = forward_flops(checkpoint)
    n_items = json.loads((checkpoint / "config.json").read_text())["model"]["n_items"]
    achieved = per_user * ours["users"] / ours["run_seconds"]
    reference = numpy_matmul_rate(n_items, hidden, batch)
    return {
        "score_all": ours,
        "torch_eager": eager,
        "users_per_s": ours["users"] / ours["seconds"],
        "model_gflops": achieved / 1e9,
        "numpy_gflops": reference / 1e9,
        "rate_ratio": achieved / reference,
        "speedup_vs_torch": eager["seconds"] / ours["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--only", choices=["ml100k", "synthetic"])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "score":
            result = child_score_all(rest[0], rest[1], rest[2], int(rest[3]))
        else:
            result = child_torch_eager(rest[0], rest[1], rest[2], int(rest[3]), 10)
        print(json.dumps(result))
        return
    work = OUT / "score-models"
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.only in (None, "ml100k"):
        results["ML-100K"] = bench("ml100k", *prepare_ml100k(args.data, work), args.batch_size)
    if args.only in (None, "synthetic"):
        results["synthetic ML-25M shape"] = bench(
            "synthetic", *prepare_synthetic(work), args.batch_size
        )
    print(
        "| data | users | score-all s | users/s | peak RSS GB | model GFLOP/s | numpy "
        "GFLOP/s | rate ratio | PyTorch eager s | speed-up |"
    )
    print("| --- " * 10 + "|")
    for name, r in results.items():
        ours, eager = r["score_all"], r["torch_eager"]
        print(
            f"| {name} | {ours['users']:,} | {ours['seconds']:.1f} | {r['users_per_s']:,.0f} | "
            f"{ours['peak_rss_gb']:.2f} | {r['model_gflops']:.0f} | {r['numpy_gflops']:.0f} | "
            f"{r['rate_ratio']:.2f} | {eager['seconds']:.1f} | "
            f"{r['speedup_vs_torch']:.2f}x |"
        )
    (OUT / "score.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
