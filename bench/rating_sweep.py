"""The sweep that chose the `autorec-blend` preset: validation RMSE of each candidate part
alone and blended with `autorec-item`.

    .venv/bin/python bench/rating_sweep.py [--data ../shared/data]

For ML-100K u1..u5 (files:uN.base,uN.test) every candidate trains on the train side minus
a random 10% validation slice (seed 0; the blend preset's fraction) and predicts that
slice, as `train-model` does; the test sides are never read. A blend's weights are fitted
by least squares on one random half of the slice and scored on the other, both ways round
and over five random halvings, so its figure is out of sample like the parts' own.

The choice: the candidate whose blend with `autorec-item` has the lowest mean validation
RMSE over the five folds; one within 0.0005 of it with fewer weights (members included)
wins, since the blend's gain is paid for with its parts' training time.

Prints a Markdown table (quoted in README) and writes bench/out/rating_sweep.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from pathlib import Path

import numpy as np

from aerec.data.split import load_split
from aerec.train.config import TrainConfig
from aerec.train.evaluate import EvalData
from aerec.train.kinds.blend import blend_weights, blended
from aerec.train.metrics import rmse
from aerec.train.pipeline import build_for_preset, eval_data
from aerec.train.presets import PRESETS, Preset

OUT = Path(__file__).resolve().parent / "out"
FOLDS = range(1, 6)
VALIDATION_FRACTION = PRESETS["autorec-blend"].validation_fraction
BASE = "autorec-item"
CLOSE = 0.0005
HALVINGS = 5


def user_autorec(l2: float, batch_size: int, members: int, hidden: int = 500) -> Preset:
    """A U-AutoRec candidate: autorec-item's shape over user vectors."""
    return Preset(
        kind="rating-ae",
        model={"hidden": [hidden], "activation": "sigmoid", "output_activation": "identity"},
        train=TrainConfig(epochs=300, batch_size=batch_size, lr=1e-3, l2=l2, patience=20),
        source="sweep candidate",
        members=members,
    )


CANDIDATES: dict[str, Preset] = {
    "U-AutoRec 500, L2 1e-3, batch 64": user_autorec(1e-3, 64, 1),
    "U-AutoRec 500, L2 1e-2, batch 64": user_autorec(1e-2, 64, 1),
    "U-AutoRec 500, L2 1e-4, batch 64": user_autorec(1e-4, 64, 1),
    "U-AutoRec 500, L2 1e-3, batch 256": user_autorec(1e-3, 256, 1),
    "U-AutoRec 1000, L2 1e-3, batch 64": user_autorec(1e-3, 64, 1, hidden=1000),
    "U-AutoRec 500, L2 1e-3, batch 64, 5 members": user_autorec(1e-3, 64, 5),
    "I-AutoRec 200 units, 5 members": Preset(
        kind=PRESETS[BASE].kind,
        model={**PRESETS[BASE].model, "hidden": [200]},
        train=PRESETS[BASE].train,
        source="sweep candidate",
        members=5,
    ),
}


def out_of_sample_blend(predicted: np.ndarray, target: np.ndarray, scale: tuple) -> float:
    """RMSE of the least-squares blend, weights fitted on one half and scored on the other."""
    squared = []
    for halving in range(HALVINGS):
        order = np.random.default_rng(halving).permutation(len(target))
        halves = np.array_split(order, 2)
        error = 0.0
        for fitted, scored in ((halves[0], halves[1]), (halves[1], halves[0])):
            weights = blend_weights(predicted[fitted], target[fitted])
            guess = np.clip(blended(predicted[scored], weights), *scale)
            error += float(((guess - target[scored]) ** 2).sum())
        squared.append(error / len(target))
    return float(np.sqrt(statistics.mean(squared)))


def validation_predictions(data: EvalData, preset: Preset) -> tuple[np.ndarray, int]:
    """The preset's predictions on the validation slice, and its number of weights."""
    model = build_for_preset(preset, data.fit)
    model.fit(data.fit, data.validation, preset.train, "cpu")
    weights = sum(p.numel() for p in model.network.parameters())
    return model.predict(data.fit, data.validation), weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ratings = args.data / "ml-100k" / "u.data"
    rows: dict[str, dict] = {}
    for fold in FOLDS:
        split = load_split(ratings, f"files:u{fold}.base,u{fold}.test", 0)
        data, _ = eval_data(split, 0, VALIDATION_FRACTION)
        target, scale = data.validation.data, data.scale
        base, weights = validation_predictions(data, PRESETS[BASE])
        record = rows.setdefault(BASE, {"alone": [], "blend": [], "weights": weights})
        record["alone"].append(rmse(np.clip(base, *scale), target))
        record["blend"].append(out_of_sample_blend(base[:, None], target, scale))
        for name, preset in CANDIDATES.items():
            predicted, weights = validation_predictions(data, preset)
            record = rows.setdefault(name, {"alone": [], "blend": [], "weights": weights})
            record["alone"].append(rmse(np.clip(predicted, *scale), target))
            both = np.column_stack([base, predicted])
            record["blend"].append(out_of_sample_blend(both, target, scale))
            print(
                f"u{fold} {name}: alone {record['alone'][-1]:.4f}, blend {record['blend'][-1]:.4f}",
                flush=True,
            )
    print(
        "\n| candidate part | validation RMSE alone, u1..u5 mean | blended with "
        f"`{BASE}` | weights (u1) |"
    )
    print("| --- | --- | --- | --- |")
    for name, record in rows.items():
        label = f"`{BASE}` (blend column: itself, calibrated)" if name == BASE else name
        print(
            f"| {label} | {statistics.mean(record['alone']):.4f} | "
            f"{statistics.mean(record['blend']):.4f} | "
            f"{record['weights']:,} |"
        )
    means = {n: statistics.mean(r["blend"]) for n, r in rows.items() if n != BASE}
    best = min(means.values())
    close = [n for n in CANDIDATES if means[n] <= best + CLOSE]
    chosen = min(close, key=lambda n: (rows[n]["weights"], means[n]))
    print(f"\nchosen: {chosen} (blend {means[chosen]:.4f}; best {best:.4f})")
    OUT.mkdir(exist_ok=True)
    (OUT / "rating_sweep.json").write_text(json.dumps({"rows": rows, "chosen": chosen}, indent=2))


if __name__ == "__main__":
    main()
