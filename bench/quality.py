"""Accuracy of the presets and the same-run baselines on the MovieLens files in ../shared.

    .venv/bin/python bench/quality.py [--data ../shared/data] [--seeds 5] [--only PART]
        [--deep default,mult-vae,recvae]

Prints Markdown tables (quoted in README) and writes bench/out/quality.json (with
--only, quality-PART.json; with other --deep presets, their names appended). The parts:
`u1` (every preset and baseline on ML-100K u1), `ranking` (the deep presets against the
strongest same-run baselines over 3 seeds on four protocols: ML-100K u1 and
ml-latest-small user-temporal:0.2, each with its ratings as they are and as implicit
feedback, only ratings >= 4 kept as 1s), `ratings` (the RMSE of the rating blend on
ML-100K u1..u5 and ml-latest-small temporal:0.98) and `speed` (seconds per epoch). Every
figure comes from train sides only: early stopping and baseline tuning use a validation
slice carved from train, then each model and tuned baseline is refit on the whole train
side (as train-model does); test ratings are only ever targets.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aerec.data.split import load_split, positives_only
from aerec.train.baselines import Biases
from aerec.train.evaluate import STRONGEST, evaluate_baselines, evaluate_model, rating_block
from aerec.train.kinds.blend import RatingBlend
from aerec.train.metrics import POSITIVE
from aerec.train.pipeline import eval_data, fit_then_refit
from aerec.train.presets import PRESETS

OUT = Path(__file__).resolve().parent / "out"
RATINGS = "autorec-blend"
RANKING_PRESETS = ("default", RATINGS, "autorec-item", "seed-ml1m", "seed-latest", "deeprec")
RANKING_SEEDS = 3
DEEP = ("default", "mult-vae", "recvae")  # the ranking presets compared over seeds
UT = "user-temporal:0.2"
U1 = "files:u1.base,u1.test"
COMPARED = ("ndcg@10", "recall@10", "coverage@10")


@functools.cache
def run(
    ratings: Path,
    spec: str,
    preset: str,
    seed: int = 0,
    baselines: bool = False,
    implicit: bool = False,
) -> dict:
    """Train one preset on one split (`implicit`: only its ratings >= 4, as 1s); its test
    metrics, seconds per epoch and baselines. Once per arguments (every caller passes all
    six, in order, so a shared run is found): the parts share u1's default and blend."""
    feedback = ", implicit" if implicit else ""
    print(f"{ratings.parent.name} {spec}{feedback}: {preset}, seed {seed}", file=sys.stderr)
    split = load_split(ratings, spec, seed)
    if implicit:
        split = positives_only(split, POSITIVE)
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


def strongest(run_report: dict) -> tuple[str, dict]:
    """The same run's strongest baseline by test NDCG@10 (of EASE, liked-target EASE and
    iALS; reported, never a tuning target): its name and metrics."""
    present = {name: run_report["baselines"][name] for name in STRONGEST}
    present = {name: metrics for name, metrics in present.items() if metrics is not None}
    name = max(present, key=lambda n: present[n]["ndcg@10"])
    return name, present[name]


def print_against_strongest(
    against: dict[str, dict[int, dict[str, dict]]], deep: tuple[str, ...]
) -> None:
    """Per protocol: each deep preset and each strongest baseline over the seeds (mean ±
    std), then the default against the best baseline of each seed's run (the baselines
    come from the default's runs: without it, the presets' rows only)."""
    header = " | ".join(COMPARED)
    print(f"| data | model | {header} |")
    print("| --- " * (2 + len(COMPARED)) + "|")
    for name, seeds in against.items():
        runs = [seeds[seed] for seed in sorted(seeds)]
        for preset in deep:
            cells = " | ".join(mean_spread([r[preset]["test"][m] for r in runs]) for m in COMPARED)
            print(f"| {name} | `{preset}` | {cells} |")
        for baseline in STRONGEST if "default" in deep else ():
            reports = [r["default"]["baselines"].get(baseline) for r in runs]
            if None in reports:
                continue
            cells = " | ".join(mean_spread([b[m] for b in reports]) for m in COMPARED)
            print(f"| {name} | {baseline.replace('_', ' ')} | {cells} |")
    if "default" not in deep:
        return
    print(
        "\n| data | seed | best baseline | `default` NDCG@10 / its | `default` R@10 / its | "
        "`default` coverage@10 / its |"
    )
    print("| --- " * 6 + "|")
    for name, seeds in against.items():
        ratios: dict[str, list[float]] = {m: [] for m in COMPARED}
        for seed in sorted(seeds):
            default = seeds[seed]["default"]
            best, metrics = strongest(default)
            for m in COMPARED:
                ratios[m].append(default["test"][m] / metrics[m])
            cells = " | ".join(f"{ratios[m][-1]:.3f}" for m in COMPARED)
            print(f"| {name} | {seed} | {best.replace('_', ' ')} | {cells} |")
        cells = " | ".join(mean_spread(ratios[m]) for m in COMPARED)
        print(f"| {name} | mean ± std | | {cells} |")


def mean_spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


@dataclass(frozen=True)
class Files:
    ml100k: Path
    latest: Path
    seeds: int  # of the rating blend on ml-latest-small temporal:0.98
    deep: tuple[str, ...] = DEEP  # the ranking part's presets


def part_u1(files: Files) -> dict[str, Any]:
    """Every ranking preset on ML-100K u1, with the same run's baselines and RMSE."""
    u1_runs = {p: run(files.ml100k, U1, p, 0, p == "default", False) for p in RANKING_PRESETS}
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
    return {"ml100k_u1": u1_runs}


def part_ranking(files: Files) -> dict[str, Any]:
    """The deep presets against the strongest same-run baselines, seeds 0..2, four
    protocols."""
    protocols = {
        "ML-100K u1": (files.ml100k, U1, False),
        "ml-latest-small UT 0.2": (files.latest, UT, False),
        "ML-100K u1, implicit": (files.ml100k, U1, True),
        "ml-latest-small UT 0.2, implicit": (files.latest, UT, True),
    }
    against: dict[str, dict[int, dict[str, dict]]] = {}
    for name, (ratings, spec, implicit) in protocols.items():
        against[name] = {
            seed: {
                preset: run(ratings, spec, preset, seed, preset == "default", implicit)
                for preset in files.deep
            }
            for seed in range(RANKING_SEEDS)
        }
    print(
        f"\n### The deep presets against the strongest same-run baselines, seeds "
        f"0..{RANKING_SEEDS - 1}\n"
    )
    print_against_strongest(against, files.deep)
    return {"against_strongest": against}


def part_ratings(files: Files) -> dict[str, Any]:
    """RMSE of the rating blend: ML-100K u1..u5, ml-latest-small temporal:0.98 over seeds."""
    folds = {
        f"u{n}": run(files.ml100k, f"files:u{n}.base,u{n}.test", RATINGS, 0, False, False)
        for n in range(1, 6)
    }
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

    # ml-latest-small temporal:0.98 over seeds (188 test ratings)
    spreads = [
        run(files.latest, "temporal:0.98", RATINGS, s, False, False) for s in range(files.seeds)
    ]
    print(f"\n### ml-latest-small temporal:0.98: RMSE over {files.seeds} seeds\n")
    spread_rows = {f"`{RATINGS}`": [r["test"]["rmse"] for r in spreads]}
    for part in PRESETS[RATINGS].blend:
        spread_rows[f"`{part}` (its part)"] = [r["parts"][part] for r in spreads]
    for label, values in spread_rows.items():
        print(
            f"{label}: mean {statistics.mean(values):.3f}, std {statistics.stdev(values):.3f}, "
            f"min {min(values):.3f}, max {max(values):.3f}"
        )
    print(f"biases: {spreads[0]['biases']['rmse']:.3f}")
    return {"ml100k_folds": folds, "latest_small_temporal": spreads}


def part_speed(files: Files) -> dict[str, Any]:
    """Seconds per epoch on this machine (seed 0; u1's runs are part `u1`'s)."""
    runs = {
        ("ML-100K u1", "default"): run(files.ml100k, U1, "default", 0, True, False),
        ("ML-100K u1", RATINGS): run(files.ml100k, U1, RATINGS, 0, False, False),
        ("ml-latest-small", "default"): run(
            files.latest, "temporal:0.98", "default", 0, False, False
        ),
        ("ml-latest-small", RATINGS): run(files.latest, "temporal:0.98", RATINGS, 0, False, False),
    }
    print("\n### Seconds per epoch (CPU)\n")
    print(f"| data | `default` | `{RATINGS}` (one member's epoch, either part) |")
    print("| --- | --- | --- |")
    for data in ("ML-100K u1", "ml-latest-small"):
        default, blend = runs[data, "default"], runs[data, RATINGS]
        print(f"| {data} | {default['seconds_per_epoch']:.2f} | {blend['seconds_per_epoch']:.2f} |")
    return {"seconds_per_epoch": {f"{d} {p}": r["seconds_per_epoch"] for (d, p), r in runs.items()}}


PART_RUNS = {"u1": part_u1, "ranking": part_ranking, "ratings": part_ratings, "speed": part_speed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", choices=list(PART_RUNS), help="run one part")
    parser.add_argument(
        "--deep",
        default=",".join(DEEP),
        help="the ranking part's presets, comma-separated (the baselines and the ratios "
        "come with `default`)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    files = Files(
        args.data / "ml-100k" / "u.data",
        args.data / "ml-latest-small" / "ratings.csv",
        args.seeds,
        tuple(args.deep.split(",")),
    )
    if unknown := set(files.deep) - set(PRESETS):
        parser.error(f"--deep: no preset {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    results: dict[str, Any] = {}
    for part in [args.only] if args.only else PART_RUNS:
        results |= PART_RUNS[part](files)
    OUT.mkdir(exist_ok=True)
    subset = "" if files.deep == DEEP else "-" + "-".join(files.deep)
    out = OUT / (f"quality-{args.only}{subset}.json" if args.only else f"quality{subset}.json")
    out.write_text(json.dumps(results, indent=2))
    print(f"\n(total {time.perf_counter() - started:.0f} s; details in {out})")


if __name__ == "__main__":
    main()
