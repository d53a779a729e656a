"""Does extending iALS's grid past a choice at its edge change the best baseline?

    .venv/bin/python bench/ials_edges.py [--data ../shared/data]

For the six (protocol, seed) pairs of `bench/quality.py --only ranking` whose iALS tuning
chose a setting at the edge of the 63-setting grid before the grids extended (commit
ed251a7), the validation NDCG@10 of the grid's best setting and of the best after
`grid_search` extended the grid past the edge (aerec.train.evaluate: IALS_LIMITS, and
factors no further than the rank bound). Validation slices only, as the quality script
tunes them; no test rating is read.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from aerec.data.split import load_split, positives_only
from aerec.train.evaluate import evaluate_ranking, grid_search, tuned_baselines
from aerec.train.pipeline import eval_data
from aerec.train.presets import PRESETS

OUT = Path(__file__).resolve().parent / "out"
U1, UT, POSITIVE = "files:u1.base,u1.test", "user-temporal:0.2", 4.0
EDGES = (  # (data set, split, implicit, seed): the runs whose iALS choice was at an edge
    ("ml-latest-small", UT, False, 2),
    ("ml-100k", U1, True, 0),
    ("ml-100k", U1, True, 1),
    ("ml-100k", U1, True, 2),
    ("ml-latest-small", UT, True, 0),
    ("ml-latest-small", UT, True, 1),
)
RATINGS = {"ml-100k": "u.data", "ml-latest-small": "ratings.csv"}


def edge_run(data_dir: Path, name: str, spec: str, implicit: bool, seed: int) -> dict:
    split = load_split(data_dir / name / RATINGS[name], spec, seed)
    if implicit:
        split = positives_only(split, POSITIVE)
    data, _ = eval_data(split, seed, PRESETS["default"].validation_fraction)
    ials = next(b for b in tuned_baselines(data) if b.name == "ials")

    def score(setting: dict[str, float]) -> float:
        block = ials.build(data.fit, setting, None)
        ranked = evaluate_ranking(block, data.fit, data.validation, 10, threshold=data.threshold)
        return ranked["ndcg@10"]

    started = time.perf_counter()
    tried = grid_search(ials.grid, ials.limits, score, ials.saturates)
    grid_best = max(tried[: len(ials.grid)], key=lambda pair: pair[1])
    best = max(tried, key=lambda pair: pair[1])
    return {
        "run": f"{name} {spec}{', implicit' if implicit else ''}, seed {seed}",
        "grid_best": grid_best,
        "extended_best": best,
        "added": [setting for setting, _ in tried[len(ials.grid) :]],
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    args = parser.parse_args()
    results = [edge_run(args.data, *edge) for edge in EDGES]
    OUT.mkdir(exist_ok=True)
    (OUT / "ials_edges.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| run | grid's best (factors, reg., α): NDCG@10 | extended best | settings added |")
    print("| --- | --- | --- | --- |")
    for r in results:
        (grid, grid_score), (best, best_score) = r["grid_best"], r["extended_best"]
        print(
            f"| {r['run']} | {_setting(grid)}: {grid_score:.4f} | {_setting(best)}: "
            f"{best_score:.4f} | {len(r['added'])} |"
        )


def _setting(setting: dict[str, float]) -> str:
    return f"({setting['factors']:g}, {setting['regularization']:g}, {setting['alpha']:g})"


if __name__ == "__main__":
    main()
