"""Accuracy of the presets and the same-run baselines on the MovieLens files in ../shared.

    .venv/bin/python bench/quality.py [--data ../shared/data] [--seeds 5]

Prints Markdown tables (quoted in README) and writes bench/out/quality.json. Every figure
comes from train sides only: early stopping and baseline tuning use a validation slice
carved from train, then each model and tuned baseline is refit on the whole train side
(as train-model does); test ratings are only ever targets.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from aerec.data.split import load_split
from aerec.train.baselines import Biases
from aerec.train.evaluate import evaluate_baselines, evaluate_model, rating_block
from aerec.train.kinds.blend import RatingBlend
from aerec.train.pipeline import eval_data, fit_then_refit
from aerec.train.presets import PRESETS

OUT = Path(__file__).resolve().parent / "out"
RATINGS = "autorec-blend"
RANKING_PRESETS = ("default", RATINGS, "autorec-item", "seed-ml1m", "seed-latest", "deeprec")
RANKING_SEEDS = 3
UT = "user-temporal:0.2"
COMPARED = ("ndcg@10", "recall@10", "coverage@10")


def run(ratings: Path, spec: str, preset: str, seed: int = 0, baselines: bool = False) -> dict:
    """Train one preset on one split; its test metrics, seconds per epoch and baselines."""
    split = load_split(ratings, spec, seed)
    chosen = PRESETS[preset]
    data, _ = eval_data(split, seed, chosen.validation_fraction)
    model, fitted, _ = fit_then_refit(chosen, data, replace(chosen.train, seed=seed), "cpu")
    report = {
        "test": evaluate_model(model, data),
        "seconds_per_epoch": statistics.mean(h["seconds"] for h in fitted.history),
        "epochs": len(fitted.history),
        "members": chosen.members,
        "validation": fitted.validation,
    }
    biases = Biases.fit(data.train)
    if isinstance(model, RatingBlend):  # each part's own test RMSE, from the same run
        report["parts"] = {
            name: rating_block(data, part.predict(data.train, data.test), biases)["rmse"]
            for name, part in zip(chosen.blend, model.parts, strict=True)
        }
        report["blend_weights"] = model.weights.tolist()
    if baselines:
        report["baselines"] = evaluate_baselines(data)
    else:
        report["biases"] = rating_block(data, biases.predict_entries(data.test), biases)
    return report


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def print_against_ease(against: dict[str, list[dict]]) -> None:
    """Per data set and seed: default and EASE side by side, then mean and spread."""
    header = " | ".join(f"`default` {m} | EASE {m}" for m in COMPARED)
    print(f"| data | seed | {header} | NDCG ratio | EASE, liked target: NDCG@10 |")
    print("| --- " * (4 + 2 * len(COMPARED)) + "|")
    for name, runs in against.items():
        pairs = [(r["test"], r["baselines"]["ease"]) for r in runs]
        for seed, (model, ease) in enumerate(pairs):
            cells = " | ".join(f"{fmt(model[m])} | {fmt(ease[m])}" for m in COMPARED)
            liked = runs[seed]["baselines"]["ease_liked_target"]["ndcg@10"]
            ratio = model["ndcg@10"] / ease["ndcg@10"]
            print(f"| {name} | {seed} | {cells} | {ratio:.3f} | {fmt(liked)} |")
        means = " | ".join(
            f"{mean_spread([p[0][m] for p in pairs])} | {mean_spread([p[1][m] for p in pairs])}"
            for m in COMPARED
        )
        ratios = [p[0]["ndcg@10"] / p[1]["ndcg@10"] for p in pairs]
        liked = mean_spread([r["baselines"]["ease_liked_target"]["ndcg@10"] for r in runs])
        print(f"| {name} | mean ± std | {means} | {mean_spread(ratios)} | {liked} |")


def mean_spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ml100k = args.data / "ml-100k" / "u.data"
    latest = args.data / "ml-latest-small" / "ratings.csv"
    results: dict[str, Any] = {}
    started = time.perf_counter()

    # 1. ML-100K u1: ranking for the presets, baselines of the same run, RMSE.
    u1 = "files:u1.base,u1.test"
    u1_runs = {p: run(ml100k, u1, p, baselines=p == "default") for p in RANKING_PRESETS}
    results["ml100k_u1"] = u1_runs
    baselines = u1_runs["default"]["baselines"]
    print("### ML-100K u1.base/u1.test: top-10 ranking (held-out ratings >= 4) and RMSE\n")
    print(
        "| model | NDCG@10 | P@10 | R@10 | coverage@10 | mean popularity | RMSE | RMSE, "
        "all 20,000 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = [(f"`{p}`", r["test"]) for p, r in u1_runs.items()]
    rows += [(name.replace("_", "-"), m) for name, m in baselines.items()]
    for label, m in rows:
        print(
            f"| {label} | {fmt(m['ndcg@10'])} | {fmt(m['precision@10'])} | "
            f"{fmt(m['recall@10'])} | {fmt(m['coverage@10'])} | "
            f"{fmt(m['mean_popularity@10'], 0)} | {fmt(m['rmse'], 4)} | "
            f"{fmt(m.get('rmse_with_cold'), 4)} |"
        )
    ease = baselines["ease"]["ndcg@10"]
    print(f"\ndefault NDCG@10 / EASE NDCG@10 = {u1_runs['default']['test']['ndcg@10'] / ease:.3f}")

    # 2. `default` against the same run's EASE over seeds, on two protocols.
    ranking_sets = {"ML-100K u1": (ml100k, u1), "ml-latest-small user-temporal:0.2": (latest, UT)}
    against: dict[str, list[dict]] = {}
    for name, (ratings, spec) in ranking_sets.items():
        against[name] = [
            u1_runs["default"]
            if (spec, seed) == (u1, 0)
            else run(ratings, spec, "default", seed=seed, baselines=True)
            for seed in range(RANKING_SEEDS)
        ]
    results["default_against_ease"] = against
    print(f"\n### `default` against the same run's EASE, seeds 0..{RANKING_SEEDS - 1}\n")
    print_against_ease(against)

    # 3. ML-100K five folds: RMSE of the rating blend, its parts and the bias baseline.
    folds = {
        f"u{n}": u1_runs[RATINGS] if n == 1 else run(ml100k, f"files:u{n}.base,u{n}.test", RATINGS)
        for n in range(1, 6)
    }
    results["ml100k_folds"] = folds
    fold_rows = {f"`{RATINGS}`": [f["test"]["rmse"] for f in folds.values()]}
    for part in PRESETS[RATINGS].blend:
        fold_rows[f"`{part}` (its part)"] = [f["parts"][part] for f in folds.values()]
    fold_rows["biases"] = [f["biases"]["rmse"] for f in folds.values()]
    print(f"\n### ML-100K u1..u5: RMSE of `{RATINGS}`\n")
    print("| model | " + " | ".join(folds) + " | mean |")
    print("| --- " * (len(folds) + 2) + "|")
    for label, values in fold_rows.items():
        cells = " | ".join(fmt(x, 4) for x in values)
        print(f"| {label} | {cells} | {fmt(statistics.mean(values), 4)} |")

    # 4. ml-latest-small temporal:0.98 over seeds (188 test ratings).
    spreads = [run(latest, "temporal:0.98", RATINGS, seed=s) for s in range(args.seeds)]
    results["latest_small_temporal"] = spreads
    print(f"\n### ml-latest-small temporal:0.98: RMSE over {args.seeds} seeds\n")
    spread_rows = {f"`{RATINGS}`": [r["test"]["rmse"] for r in spreads]}
    for part in PRESETS[RATINGS].blend:
        spread_rows[f"`{part}` (its part)"] = [r["parts"][part] for r in spreads]
    for label, values in spread_rows.items():
        print(
            f"{label}: mean {statistics.mean(values):.3f}, std {statistics.stdev(values):.3f}, "
            f"min {min(values):.3f}, max {max(values):.3f}"
        )
    print(f"biases: {spreads[0]['biases']['rmse']:.3f}")

    # 5. Seconds per epoch on this machine.
    latest_default = run(latest, "temporal:0.98", "default")
    print("\n### Seconds per epoch (CPU)\n")
    print(f"| data | `default` | `{RATINGS}` (one member's epoch, either part) |")
    print("| --- | --- | --- |")
    print(
        f"| ML-100K u1 | {u1_runs['default']['seconds_per_epoch']:.2f} | "
        f"{u1_runs[RATINGS]['seconds_per_epoch']:.2f} |"
    )
    print(
        f"| ml-latest-small | {latest_default['seconds_per_epoch']:.2f} | "
        f"{statistics.mean(r['seconds_per_epoch'] for r in spreads):.2f} |"
    )
    results["latest_small_default"] = latest_default
    OUT.mkdir(exist_ok=True)
    (OUT / "quality.json").write_text(json.dumps(results, indent=2))
    print(f"\n(total {time.perf_counter() - started:.0f} s; details in {OUT / 'quality.json'})")


if __name__ == "__main__":
    main()
