"""train-model speed and memory on the ML-25M shape, against the dense product limit
measured in the same run.

    .venv/bin/python bench/train.py [--epochs 2] [--preset default] [--split user-temporal:0.2]
        [--users 162541 --items 59047 --ratings 25000095] [--loss-only]

- data: synthetic ratings of the ML-25M shape, generated once into bench/out/ (the file
  bench/score.py uses);
- run: `train-model` with the preset and `--epochs` in a fresh child process, as a user
  runs it (split, validation, refit, baselines, evaluation, checkpoint); its peak RSS,
  wall seconds and log (bench/out/train.log), and each epoch's training-pass seconds from
  the checkpoint's history;
- limit: the six products of a dense forward and backward pass of the preset's network
  at its batch size (input @ W1', grad' @ input, grad @ W1, code @ W2', grad' @ code,
  grad @ W2), each timed in torch in this process, best of 10 before and 10 after the
  child; an epoch's limit is its batches times their sum;
- ratio: that limit over the measured training pass (1 would be a trainer doing nothing
  but those products);
- loss: the multinomial loss's forward and backward on one batch of logits of the shape
  (150 rated items a user), aerec's fused function against autograd of the same formula
  (logsumexp, gather, sum), best of 20 each; `--loss-only` measures just this (seconds).

Targets (issue 20): peak RSS <= 8 GB; ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import torch

from aerec.contracts import CHECKPOINT_HISTORY
from aerec.data.synth import SynthConfig, write_synthetic
from aerec.train.presets import PRESETS

OUT = Path(__file__).resolve().parent / "out"


def ratings_file(users: int, items: int, count: int) -> Path:
    """The synthetic ratings (generated on the first run; bench/score.py shares them)."""
    ratings = OUT / f"synth-{users}-{items}-{count}" / "ratings.csv"
    if not ratings.exists():
        write_synthetic(SynthConfig(users, items, count, seed=0, half_stars=True), ratings)
    return ratings


def _best_seconds(product: Callable[[], torch.Tensor], repeats: int = 10) -> float:
    product()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - started)
    return best


def product_seconds(batch: int, items: int, hidden: int) -> dict[str, float]:
    """Best seconds of each product of a dense forward and backward pass of one batch."""
    generator = torch.Generator().manual_seed(0)
    rows, w1 = torch.randn(batch, items, generator=generator), torch.randn(hidden, items)
    code, w2 = torch.randn(batch, hidden), torch.randn(items, hidden)
    wide_grad, narrow_grad = torch.randn(batch, items), torch.randn(batch, hidden)
    products: dict[str, Callable[[], torch.Tensor]] = {
        "input @ W1'": lambda: rows @ w1.t(),
        "grad' @ input": lambda: narrow_grad.t() @ rows,
        "grad @ W1": lambda: narrow_grad @ w1,
        "code @ W2'": lambda: code @ w2.t(),
        "grad' @ code": lambda: wide_grad.t() @ code,
        "grad @ W2": lambda: wide_grad @ w2,
    }
    with torch.no_grad():
        return {name: _best_seconds(product) for name, product in products.items()}


def loss_ms(batch: int, items: int, width: int = 150) -> dict[str, float]:
    """Best ms of the multinomial loss's forward and backward: fused, and by autograd."""
    from aerec.train.loss import multinomial_nll

    def by_autograd(z: torch.Tensor, c: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        picked = (z.gather(1, c) * w).sum(dim=1)
        return (w.sum(dim=1) * torch.logsumexp(z, dim=1) - picked).mean()

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(batch, items, generator=generator, requires_grad=True)
    columns = torch.randint(0, items, (batch, width), generator=generator)
    weights = torch.rand(batch, width, generator=generator)
    forms = {"fused": multinomial_nll, "autograd": by_autograd}

    def gradient(form: Callable[..., torch.Tensor]) -> Callable[[], torch.Tensor]:
        return lambda: torch.autograd.grad(form(logits, columns, weights), logits)[0]

    return {name: 1000 * _best_seconds(gradient(form), 20) for name, form in forms.items()}


def run_train_model(ratings: Path, out: Path, preset: str, epochs: int, split: str) -> dict:
    """train-model in a child process: its wall seconds, peak RSS and stderr's tail."""
    command = [
        str(Path(sys.executable).with_name("train-model")),
        *("--ratings", str(ratings), "--out", str(out), "--preset", preset),
        *("--epochs", str(epochs), "--split", split),
    ]
    log = OUT / "train.log"
    print(f"train-model running; its log: {log}", flush=True)
    started = time.perf_counter()
    with log.open("w") as stderr:
        done = subprocess.run(command, stderr=stderr, stdout=subprocess.DEVNULL, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"train-model failed ({done.returncode}): see {log}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    return {"seconds": seconds, "peak_rss_gb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=162_541)
    parser.add_argument("--items", type=int, default=59_047)
    parser.add_argument("--ratings", type=int, default=25_000_095)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--split", default="user-temporal:0.2")
    parser.add_argument("--loss-only", action="store_true", help="time only the loss")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    loss = loss_ms(preset.train.batch_size, args.items)
    print(
        f"multinomial loss, forward and backward of [{preset.train.batch_size}, {args.items:,}] "
        f"logits: fused {loss['fused']:.1f} ms, autograd {loss['autograd']:.1f} ms"
    )
    if args.loss_only:
        return
    ratings = ratings_file(args.users, args.items, args.ratings)
    OUT.mkdir(exist_ok=True)
    batch, hidden = preset.train.batch_size, preset.model["hidden"][0]
    before = product_seconds(batch, args.items, hidden)
    with tempfile.TemporaryDirectory() as work:
        checkpoint = Path(work) / "checkpoint"
        run = run_train_model(ratings, checkpoint, args.preset, args.epochs, args.split)
        history = pl.read_csv(checkpoint / CHECKPOINT_HISTORY).to_dicts()
    after = product_seconds(batch, args.items, hidden)
    products = {name: min(before[name], after[name]) for name in before}
    per_batch = sum(products.values())
    epochs = []
    for row in history:
        limit = -(-int(row["rows"]) // batch) * per_batch
        epochs.append({**row, "limit_seconds": limit, "ratio": limit / row["train_seconds"]})
    result = {
        "shape": {"users": args.users, "items": args.items, "ratings": args.ratings},
        "preset": args.preset,
        "epochs": args.epochs,
        "split": args.split,
        "threads": torch.get_num_threads(),
        "product_ms": {name: seconds * 1000 for name, seconds in products.items()},
        "per_batch_limit_ms": per_batch * 1000,
        "loss_ms": loss,
        "train_model": run,
        "history": epochs,
    }
    (OUT / "train.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"train-model --preset {args.preset} --epochs {args.epochs} --split {args.split}")
    print(f"  {args.users:,} users x {args.items:,} items, {args.ratings:,} ratings")
    print(f"  wall {run['seconds']:.0f} s, peak RSS {run['peak_rss_gb']:.2f} GB (target <= 8)")
    print(f"  dense fwd+bwd products of one batch of {batch}: {per_batch * 1000:.1f} ms")
    for row in epochs:
        print(
            f"  epoch {row['epoch']}: {row['rows']:,} rows, training pass "
            f"{row['train_seconds']:.1f} s (whole epoch {row['seconds']:.1f} s), limit "
            f"{row['limit_seconds']:.1f} s, ratio {row['ratio']:.2f} (target >= 0.5)"
        )


if __name__ == "__main__":
    main()
