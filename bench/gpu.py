"""The one-call device check: score-all and training on a GPU against the same run's limit.

    bench/gpu.sh [--wheels DIR] [--device cuda|cpu] [--users 2000000] [--items 59047]
        [--per-user 20] [--compare 20000] [--train-users 20000]

- data: `--users` synthetic users with `--per-user` distinct items each, drawn by a
  Zipf-like popularity over `--items` items, as canonical Parquet (numpy, seeded);
- model: an untrained default-preset model over those items (timing does not depend on
  the weights), exported as the float32 and the float16 graph;
- score-all end to end on `--device` with each graph (IO binding, the provider's default
  batch): seconds and users/s;
- agreement: the first `--compare` users scored on the CPU provider with the float32 graph
  against each device table: the share of users whose top 10 is the same list in the
  same order, and the largest score difference;
- limit: the device's own rate for the decoder's product ([batch, hidden] @ [hidden,
  items] in torch, float32 and float16 on CUDA), in users/s; each run's users/s over it;
- training: one epoch of the default preset on `--train-users` of the users, on `--device`
  with bfloat16 autocast and in float32, and on the CPU in float32 (the training pass's
  seconds from the checkpoint's history; the rows held on the device once per run).

Prints one table and writes bench/out/gpu.json. `--device cpu` with small sizes is the
script's own dry run on a host without a GPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

OUT = Path(__file__).resolve().parent / "out"
PRECISIONS = ("fp32", "fp16")


def synthetic_ratings(path: Path, users: int, items: int, per_user: int) -> Path:
    """Each user's `per_user` distinct items by a Zipf-like popularity, half-star ratings."""
    rng = np.random.default_rng(0)
    popularity = 1.0 / (np.arange(items) + 10.0)
    drawn = rng.choice(items, size=(users, per_user * 2), p=popularity / popularity.sum())
    frame = (
        pl.DataFrame({"user_id": np.repeat(np.arange(1, users + 1), per_user * 2)})
        .with_columns(item_id=pl.Series(drawn.ravel() + 1))
        .unique(["user_id", "item_id"], keep="first", maintain_order=True)
        .group_by("user_id", maintain_order=True)
        .head(per_user)
    )
    stars = rng.integers(1, 11, frame.height) / 2
    frame = frame.with_columns(
        rating=pl.Series(stars, dtype=pl.Float32), timestamp=pl.int_range(frame.height)
    )
    frame.write_parquet(path)
    return path


def untrained_models(work: Path, ratings: Path) -> tuple[Path, dict[str, Path]]:
    """An untrained default-preset checkpoint over the ratings' items, and its graphs."""
    from aerec.data.idmap import IdMap
    from aerec.export.onnx_export import export_onnx
    from aerec.train.checkpoint import save_checkpoint
    from aerec.train.kinds.multinomial import MultinomialAutoEncoder
    from aerec.train.presets import PRESETS

    counts = pl.scan_parquet(ratings).group_by("item_id").len().sort("item_id").collect()
    items = IdMap.from_ids(counts["item_id"])
    model = MultinomialAutoEncoder(PRESETS["default"].model_config(len(items)))
    checkpoint = work / "checkpoint"
    config = {"preset": "default (untrained)"}
    save_checkpoint(checkpoint, model, items, config, {}, "epoch\n", counts["len"].to_numpy())
    graphs = {p: work / f"model-{p}.onnx" for p in PRECISIONS}
    for precision, graph in graphs.items():
        export_onnx(checkpoint, graph, k=10, precision=precision)
    return checkpoint, graphs


def score_all_run(model: Path, ratings: Path, out: Path, device: str) -> dict[str, Any]:
    """score-all end to end into a single file: seconds, users/s, the provider."""
    from aerec.io.sinks import FileSink
    from aerec.score.engines.local import LocalEngine
    from aerec.score.job import ScoreRequest
    from aerec.score.pipeline import score_all

    started = time.perf_counter()
    manifest = score_all(ScoreRequest(model, ratings, device=device), FileSink(out), LocalEngine())
    seconds = time.perf_counter() - started
    users = int(manifest["users"])
    return {"seconds": seconds, "users": users, "users_per_s": users / seconds}


def agreement(reference: Path, table: Path) -> dict[str, float]:
    """Of the reference table's users: the share with the same top-10 list in order, and
    the largest score difference of the rows both hold."""
    want = pl.read_parquet(reference)
    got = pl.read_parquet(table).join(want.select("user_id").unique(), on="user_id")
    lists = [
        frame.sort("user_id", "rank").group_by("user_id", maintain_order=True).agg("item_id")
        for frame in (want, got)
    ]
    joined = lists[0].join(lists[1], on="user_id", how="left", suffix="_got")
    same = joined.select((pl.col("item_id") == pl.col("item_id_got")).mean()).item()
    both = want.join(got, on=["user_id", "rank", "item_id"], suffix="_got")
    difference = both.select((pl.col("score") - pl.col("score_got")).abs().max()).item()
    return {"same_top10_share": float(same or 0.0), "max_score_difference": float(difference or 0)}


def decoder_rate(device: str, hidden: int, items: int, dtype: torch.dtype) -> float:
    """Users/s of the decoder's product alone on the device (best of 20 batches of 4,096)."""
    batch = 4_096
    codes = torch.randn(batch, hidden, device=device).to(dtype)
    weights = torch.randn(hidden, items, device=device).to(dtype)
    best = float("inf")
    for _ in range(21):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        codes @ weights
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return batch / best


def training_epoch(ratings: Path, work: Path, device: str, precision: str) -> float:
    """Seconds of one training pass of the default preset (the checkpoint's history)."""
    from aerec.contracts import CHECKPOINT_HISTORY
    from aerec.train.pipeline import TrainOptions, train_model

    out = work / f"trained-{device}-{precision}"
    options = TrainOptions(epochs=1, device=device, baselines=False, precision=precision)
    train_model(ratings, out, "none", options)
    return float(pl.read_csv(out / CHECKPOINT_HISTORY)["train_seconds"][0])


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every figure of the table, in the order the docstring lists them."""
    ratings = synthetic_ratings(work / "ratings.parquet", args.users, args.items, args.per_user)
    checkpoint, graphs = untrained_models(work, ratings)
    hidden = json.loads((checkpoint / "config.json").read_text())["model"]["hidden"][0]
    subset = work / "subset.parquet"
    pl.scan_parquet(ratings).filter(pl.col("user_id") <= args.compare).sink_parquet(subset)
    reference = work / "reference.parquet"
    score_all_run(graphs["fp32"], subset, reference, "cpu")
    runs = {}
    for precision, graph in graphs.items():
        table = work / f"recs-{precision}.parquet"
        runs[precision] = score_all_run(graph, ratings, table, args.device)
        runs[precision].update(agreement(reference, table))
        dtype = torch.float16 if precision == "fp16" and args.device == "cuda" else torch.float32
        limit = decoder_rate(args.device, hidden, args.items, dtype)
        runs[precision].update(
            limit_users_per_s=limit, ratio=runs[precision]["users_per_s"] / limit
        )
    train = work / "train.parquet"
    pl.scan_parquet(ratings).filter(pl.col("user_id") <= args.train_users).sink_parquet(train)
    trainings = dict.fromkeys([(args.device, "bf16"), (args.device, "fp32"), ("cpu", "fp32")])
    epochs = {f"{d} {p}": training_epoch(train, work, d, p) for d, p in trainings}
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    return {"device": name, "shape": vars(args), "score_all": runs, "train_epoch_s": epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--users", type=int, default=2_000_000)
    parser.add_argument("--items", type=int, default=59_047)
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--compare", type=int, default=20_000)
    parser.add_argument("--train-users", type=int, default=20_000)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aerec-gpu-") as work:
        result = measure(args, Path(work))
    (OUT / "gpu.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['device']}: {args.users:,} users x {args.items:,} items, {args.per_user} each")
    print("| graph | seconds | users/s | limit users/s | ratio | same top 10 | max score diff |")
    print("|---|---|---|---|---|---|---|")
    for precision, run in result["score_all"].items():
        print(
            f"| {precision} | {run['seconds']:.1f} | {run['users_per_s']:,.0f} | "
            f"{run['limit_users_per_s']:,.0f} | {run['ratio']:.2f} | "
            f"{run['same_top10_share']:.4f} | {run['max_score_difference']:.2e} |"
        )
    epochs = ", ".join(f"{d} {s:.1f} s" for d, s in result["train_epoch_s"].items())
    print(f"one training epoch of {args.train_users:,} users: {epochs}")


if __name__ == "__main__":
    main()
