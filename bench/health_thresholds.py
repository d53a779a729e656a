"""The health figures of healthy tables and of a collapsed one, to choose the health gates.

    .venv/bin/python bench/health_thresholds.py [--data ../shared/data] [--seeds 2]

For ML-100K u1, ml-latest-small user-temporal:0.2 and the synthetic data of `make run`:
train the default preset (healthy) and `seed-ml1m` (the second seed, which puts the
same rarely rated films first for everybody) on the split's train side, export with
k=10, score every user of the file, and print the table's health figures (Markdown,
quoted in README "Health gates"); bench/out/health_thresholds.json keeps them. The
default --max-item-share lies between the largest healthy figure and the collapsed ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from aerec.data.synth import SynthConfig, write_synthetic
from aerec.export.onnx_export import export_onnx
from aerec.io.sinks import FileSink
from aerec.score.engines.local import LocalEngine
from aerec.score.job import Gates, ScoreRequest
from aerec.score.pipeline import score_all
from aerec.train.pipeline import TrainOptions, train_model

OUT = Path(__file__).resolve().parent / "out"
PRESETS = ("default", "seed-ml1m")
FIGURES = ("top_item_share", "top10_share", "catalogue_coverage", "gini", "mean_popularity")


def health(ratings: Path, split: str, preset: str, seed: int, work: Path) -> dict[str, Any]:
    """Train, export and score one configuration; the table's health figures."""
    checkpoint = work / f"{preset}-{seed}"
    train_model(
        ratings, checkpoint, split, TrainOptions(preset, seed=seed, device="cpu", baselines=False)
    )
    model = work / f"{preset}-{seed}.onnx"
    export_onnx(checkpoint, model, k=10)
    off = Gates(max_item_share=1.0, min_coverage_ratio=0.0, max_churn=1.0)  # measure, never refuse
    request = ScoreRequest(model=model, ratings=ratings, device="cpu", gates=off)
    manifest = score_all(request, FileSink(work / f"{preset}-{seed}.parquet"), LocalEngine())
    return dict(manifest["health"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        synthetic, _ = write_synthetic(
            SynthConfig(users=2000, items=1500, ratings=150_000, seed=7), work / "synth.csv"
        )
        sets = {
            "ML-100K u1": (args.data / "ml-100k" / "u.data", "files:u1.base,u1.test"),
            "ml-latest-small": (args.data / "ml-latest-small" / "ratings.csv", "user-temporal:0.2"),
            "synthetic (make run)": (synthetic, "user-temporal:0.2"),
        }
        results: dict[str, Any] = {}
        print("| data | preset | seed | " + " | ".join(FIGURES) + " |")
        print("|---" * (3 + len(FIGURES)) + "|")
        for name, (ratings, split) in sets.items():
            for preset in PRESETS:
                for seed in range(args.seeds if preset == "default" else 1):
                    figures = health(ratings, split, preset, seed, work)
                    results[f"{name}/{preset}/{seed}"] = figures
                    cells = " | ".join(f"{figures[f]:.3f}" for f in FIGURES)
                    print(f"| {name} | {preset} | {seed} | {cells} |", flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "health_thresholds.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
