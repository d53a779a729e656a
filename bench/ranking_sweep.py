"""The sweep that chose the `default` preset: every configuration's validation NDCG@10.

    .venv/bin/python bench/ranking_sweep.py [--data ../shared/data] [--seeds 1]

For ML-100K u1 (files:u1.base,u1.test) and ml-latest-small (user-temporal:0.2) each
configuration trains on the train side minus a random validation slice (the preset's
fraction, seeded) and is scored on that slice, as `train-model` does. The test side of
either split is never read. EASE is tuned on the same slice (its best λ counted), so each
configuration is compared with the strongest EASE the slice allows; "EASE, liked target"
is EASE fitted to reconstruct the rated-≥-positive items from the rated set, the linear
model given the same signal as the down-weighted likelihood.

Stage 1 is the grid below; stage 2 changes one setting at a time from stage 1's choice.
The choice: among the configurations within 1% of the highest mean ratio to EASE (over
both data sets and the seeds), the one with the fewest weights (members included), then
the highest ratio. One configuration's validation NDCG@10 differs by up to 0.75% from
seed to seed (ML-100K u1, seeds 0..2), so a smaller difference does not justify a larger
model: every weight is paid again for every user on every night's scoring.

Prints a Markdown table (quoted in README) and writes bench/out/ranking_sweep.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from aerec.data.csr import CsrMatrix
from aerec.data.split import load_split
from aerec.train.baselines import ease_block, gram_matrix, liked_ease_block
from aerec.train.evaluate import EASE_REGULARISATION
from aerec.train.metrics import evaluate_ranking, positive_threshold
from aerec.train.pipeline import build_for_preset, eval_data
from aerec.train.presets import PRESETS

OUT = Path(__file__).resolve().parent / "out"
GRID = {
    "model.below_positive_weight": (1.0, 0.5, 0.3, 0.1, 0.0),
    "model.hidden": ([200], [600]),
    "model.input_dropout": (0.5, 0.7),
}
VARIATIONS: list[dict[str, Any]] = [
    {"train.batch_size": 128},
    {"train.batch_size": 32},
    {"train.lr": 3e-3},
    {"train.lr": 3e-4, "train.epochs": 300},
    {"train.weight_decay": 1e-5},
    {"model.hidden": [600, 200]},
    {"model.activation": "relu"},
    {"members": 3},
]
CLOSE = 0.01  # relative: configurations this close to the best count as equal


def baselines(fit: CsrMatrix, validation: CsrMatrix, threshold: float) -> dict[str, float]:
    """The best validation NDCG@10 of EASE and of liked-target EASE over the λ grid."""
    gram = gram_matrix(fit)
    best = {"ease": 0.0, "ease_liked_target": 0.0}
    for value in EASE_REGULARISATION:
        for name, block in (
            ("ease", ease_block(fit, value, gram=gram)),
            ("ease_liked_target", liked_ease_block(fit, value, threshold, gram=gram)),
        ):
            ndcg = evaluate_ranking(block, fit, validation, 10, threshold=threshold)["ndcg@10"]
            best[name] = max(best[name], ndcg)
    return best


def choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The smallest configuration within CLOSE of the best mean ratio to EASE."""
    best = max(statistics.mean(row["ratio"]) for row in rows)
    close = [row for row in rows if statistics.mean(row["ratio"]) >= best * (1 - CLOSE)]
    return min(close, key=lambda row: (row["weights"], -statistics.mean(row["ratio"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sets = {
        "ML-100K u1": (args.data / "ml-100k" / "u.data", "files:u1.base,u1.test"),
        "ml-latest-small": (args.data / "ml-latest-small" / "ratings.csv", "user-temporal:0.2"),
    }
    base = PRESETS["default"]
    started = time.perf_counter()
    slices = {}
    reference: dict[str, list[dict[str, float]]] = {name: [] for name in sets}
    for (name, (ratings, spec)), seed in itertools.product(sets.items(), range(args.seeds)):
        data, _ = eval_data(load_split(ratings, spec, seed), seed, base.validation_fraction)
        slices[name, seed] = data.fit, data.validation
        threshold = positive_threshold(float(data.fit.data.max()))
        reference[name].append(baselines(data.fit, data.validation, threshold))

    def sweep(changes: dict[str, Any]) -> dict[str, Any]:
        preset = base.changed(changes)
        row: dict[str, Any] = {"config": changes, "ndcg": {}, "ratio": [], "seconds": {}}
        for (name, seed), (fit, validation) in slices.items():
            model = build_for_preset(preset, fit)
            fitted = model.fit(fit, validation, replace(preset.train, seed=seed), "cpu")
            ndcg = fitted.validation["best"]
            row["ndcg"].setdefault(name, []).append(ndcg)
            row["ratio"].append(ndcg / reference[name][seed]["ease"])
            per_epoch = statistics.mean(h["seconds"] for h in fitted.history) * preset.members
            row["seconds"].setdefault(name, []).append(per_epoch)
            row["weights"] = sum(p.numel() for p in model.network.parameters())
            print(f"{name} seed {seed} {changes}: {ndcg:.4f}", flush=True)
        return row

    grid = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    rows = [sweep(changes) for changes in grid]
    first = choose(rows)
    rows += [sweep({**first["config"], **change}) for change in VARIATIONS]
    chosen = choose(rows)

    print("\n### Validation NDCG@10 of the `default` preset's sweep\n")
    print(
        "| configuration | "
        + " | ".join(sets)
        + " | mean ratio to EASE | weights (ml-latest-small) | s/epoch (ml-latest-small) |"
    )
    print("| --- " * (len(sets) + 4) + "|")
    for row in rows:
        cells = [", ".join(f"{k.split('.')[-1]} {v}" for k, v in row["config"].items())]
        cells += [f"{statistics.mean(row['ndcg'][name]):.4f}" for name in sets]
        cells.append(f"{statistics.mean(row['ratio']):.3f}")
        cells.append(f"{row['weights']:,}")
        cells.append(f"{statistics.mean(row['seconds']['ml-latest-small']):.2f}")
        print("| " + " | ".join(cells) + " |")
    for baseline in ("ease", "ease_liked_target"):
        cells = [f"{statistics.mean(r[baseline] for r in reference[name]):.4f}" for name in sets]
        print(f"| {baseline.replace('_', ' ')} (best λ) | " + " | ".join(cells) + " | | | |")
    print(f"\nchosen: {chosen['config']} (mean ratio {statistics.mean(chosen['ratio']):.3f})")
    OUT.mkdir(exist_ok=True)
    (OUT / "ranking_sweep.json").write_text(
        json.dumps({"rows": rows, "baselines": reference, "chosen": chosen["config"]}, indent=2)
    )
    print(f"(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
