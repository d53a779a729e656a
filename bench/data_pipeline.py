"""Read, validate, split and build CSR for an ML-25M-sized synthetic ratings.csv.

Target (issue 2): under 30 s and under 4 GB peak memory on the 2-core development machine.

    .venv/bin/python bench/data_pipeline.py [--users 162541 --items 59047 --ratings 25000095]

The data set is generated once into bench/out/ (reused on later runs); the measured part
runs in a fresh child process, so its peak RSS excludes the generator.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def measure(path: str, spec: str) -> dict[str, float]:
    """The timed part, run in the child process."""
    from aerec.data.csr import CsrMatrix
    from aerec.data.idmap import IdMap
    from aerec.data.readers import read_ratings
    from aerec.data.split import split_frame

    timings: dict[str, float] = {}
    started = time.perf_counter()
    frame = read_ratings(path)
    timings["read_validate_s"] = time.perf_counter() - started
    mark = time.perf_counter()
    split = split_frame(frame, spec, seed=0)
    timings["split_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    users, items = IdMap.from_ids(split.train["user_id"]), IdMap.from_ids(split.train["item_id"])
    train = CsrMatrix.from_frame(split.train, users, items)
    timings["idmap_csr_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    timings["ratings"] = frame.height
    timings["train_nnz"] = train.nnz
    timings["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=162_541)
    parser.add_argument("--items", type=int, default=59_047)
    parser.add_argument("--ratings", type=int, default=25_000_095)
    parser.add_argument("--split", default="random:0.1")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.split)))
        return

    from aerec.data.synth import SynthConfig, write_synthetic

    data = OUT / f"synth-{args.users}-{args.items}-{args.ratings}" / "ratings.csv"
    if not data.exists():
        started = time.perf_counter()
        config = SynthConfig(
            users=args.users, items=args.items, ratings=args.ratings, seed=0, half_stars=True
        )
        write_synthetic(config, data)
        print(f"generated {data} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(data), "--split", args.split],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(child.stdout)
    size_mb = data.stat().st_size / 1e6
    print(f"file: {data.name}, {size_mb:.0f} MB, {result['ratings']:,} ratings ({args.split})")
    for key in ("read_validate_s", "split_s", "idmap_csr_s", "total_s"):
        print(f"  {key:<16} {result[key]:6.2f}")
    print(f"  peak_rss_gb      {result['peak_rss_gb']:6.2f}")
    print(
        f"  targets: total < 30 s: {result['total_s'] < 30}; peak < 4 GB: "
        f"{result['peak_rss_gb'] < 4}"
    )


if __name__ == "__main__":
    main()
