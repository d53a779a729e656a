"""Scale-out on a local Ray cluster against the single-node scorer, on the same data.

    .venv/bin/python bench/ray_scale.py [--users 2000000] [--items 20000] [--per-user 10]
        [--ratings-per-part 250000] [--cpus 2] [--actors 2]

Synthetic ratings (popularity-skewed items, `--per-user` each) are written twice: as a
directory of 8 Parquet files in random user order (what the Ray engine reads, as a
cluster would) and as one user-sorted Parquet file (what the local engine streams). An
untrained default-shaped model over the items scores them (timing does not depend on the
weights). Each run is a fresh child process, end to end (read, score, write the parts,
manifest), both writing one part per `--ratings-per-part` ratings (so a part, and a Ray
task, holds as much at every size): the local engine, and the Ray engine on a cluster of
`--cpus` CPUs with `--actors` scoring actors sharing all CPUs but one (kept for reading
and grouping). Reported: seconds, users/s, the driver's peak RSS, and for Ray each scoring
worker's largest private memory (RssAnon) and mapped object-store memory (RssShmem),
sampled from /proc while it runs, at 1/5 of the users and at all of them: a worker's own
memory must not grow with the users. From the measured per-actor rate, a paper estimate
for 100M users.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "ray_scale"


def write_ratings(users: int, items: int, per_user: int, folder: Path) -> tuple[Path, Path]:
    """(directory of 8 shuffled Parquet parts, one user-sorted Parquet file)."""
    import polars as pl

    parts, single = folder / "parts", folder / "sorted.parquet"
    if single.exists():
        return parts, single
    rng = np.random.default_rng(0)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    user = np.repeat(np.arange(1, users + 1, dtype=np.int64), per_user)
    item = rng.choice(items, size=user.size, p=popularity / popularity.sum()) + 1
    frame = pl.DataFrame({"user_id": user, "item_id": item.astype(np.int64), "rating": 4.0}).unique(
        ["user_id", "item_id"], keep="first", maintain_order=True
    )
    frame = frame.with_columns(pl.col("rating").cast(pl.Float32))
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(single)
    parts.mkdir(exist_ok=True)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1)
    for number, piece in enumerate(shuffled.iter_slices(-(-shuffled.height // 8))):
        piece.write_parquet(parts / f"ratings-{number}.parquet")
    return parts, single


def untrained_model(items: int, folder: Path) -> Path:
    """An untrained default-preset model over item ids 1..items, exported with k=10."""
    from aerec.data.idmap import IdMap
    from aerec.export.onnx_export import export_onnx
    from aerec.train.checkpoint import save_checkpoint
    from aerec.train.kinds.multinomial import MultinomialAutoEncoder
    from aerec.train.presets import PRESETS

    model = folder / "model.onnx"
    if not model.exists():
        network = MultinomialAutoEncoder(PRESETS["default"].model_config(items))
        checkpoint = folder / "checkpoint"
        ids = IdMap(np.arange(1, items + 1, dtype=np.int64))
        save_checkpoint(checkpoint, network, ids, {"preset": "default (untrained)"}, {}, "epoch\n")
        export_onnx(checkpoint, model, k=10)
    return model


def worker_peaks(stop: threading.Event, peaks: dict[str, dict[int, float]]) -> None:
    """Record each Ray scoring worker's largest private memory (RssAnon: its own heap)
    and shared memory (RssShmem: Ray's object store pages it has mapped), in GB, sampled
    every half second until `stop`."""
    while not stop.wait(0.5):
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                text = status.read_text()
            except OSError:
                continue
            if "MapWorker" not in _cmdline(status):
                continue
            pid = int(status.parent.name)
            for line in text.splitlines():
                for kind in ("RssAnon", "RssShmem"):
                    if line.startswith(f"{kind}:"):
                        value = int(line.split()[1]) / 1024**2
                        peaks[kind][pid] = max(peaks[kind].get(pid, 0.0), value)


def _cmdline(status: Path) -> str:
    try:
        return (status.parent / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def peak_rss_gb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def child(
    engine: str, model: str, ratings: str, out: str, parts: int, cpus: int, actors: int
) -> dict:
    """One end-to-end run in this (fresh) process."""
    from aerec.io.sinks import DirectorySink
    from aerec.score.engines.local import LocalEngine
    from aerec.score.engines.ray import RayEngine, RayOptions
    from aerec.score.job import Engine, ScoreRequest
    from aerec.score.pipeline import score_all

    options = None
    peaks: dict[str, dict[int, float]] = {"RssAnon": {}, "RssShmem": {}}
    stop = threading.Event()
    sampler = threading.Thread(target=worker_peaks, args=(stop, peaks), daemon=True)
    if engine == "ray":
        import ray

        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        # one CPU stays free for reading and grouping; the actors share the rest
        options = RayOptions(concurrency=actors, num_cpus=max(0.1, (cpus - 1) / actors))
        sampler.start()
    started = time.perf_counter()
    chosen: Engine = RayEngine(options) if engine == "ray" else LocalEngine()
    request = ScoreRequest(Path(model), Path(ratings), device="cpu")
    manifest = score_all(request, DirectorySink(out, parts), chosen)
    seconds = time.perf_counter() - started
    stop.set()
    return {
        "engine": engine,
        "seconds": seconds,
        "users": manifest["users"],
        "rows": manifest["rows"],
        "users_per_s": manifest["users"] / seconds,
        "driver_peak_rss_gb": peak_rss_gb(),
        "parts": len(manifest["parts"]),
        "worker_peak_private_gb": sorted(peaks["RssAnon"].values()),
        "worker_peak_shared_gb": sorted(peaks["RssShmem"].values()),
    }


def in_child(*args: str) -> dict:
    environment = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "disabled",
    }
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def point(users: int, args: argparse.Namespace, model: Path) -> dict[str, Any]:
    parts_dir, single = write_ratings(users, args.items, args.per_user, OUT / f"data-{users}")
    runs: dict[str, Any] = {"parts": -(-users * args.per_user // args.ratings_per_part)}
    for engine, ratings in (("local", single), ("ray", parts_dir)):
        out = OUT / f"out-{users}-{engine}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        runs[engine] = in_child(
            engine,
            str(model),
            str(ratings),
            str(out),
            str(runs["parts"]),
            str(args.cpus),
            str(args.actors),
        )
    runs["ray_over_local"] = runs["ray"]["users_per_s"] / runs["local"]["users_per_s"]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2_000_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--per-user", type=int, default=10)
    parser.add_argument("--ratings-per-part", type=int, default=250_000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--child", nargs="*")
    args = parser.parse_args()
    if args.child:
        engine, model, ratings, out, parts, cpus, actors = args.child
        print(json.dumps(child(engine, model, ratings, out, int(parts), int(cpus), int(actors))))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    model = untrained_model(args.items, OUT)
    small, large = (point(users, args, model) for users in (args.users // 5, args.users))
    per_actor = large["ray"]["users_per_s"] / args.actors
    small_peak = max(small["ray"]["worker_peak_private_gb"], default=0.0)
    large_peak = max(large["ray"]["worker_peak_private_gb"], default=0.0)
    report = {
        "shape": {"users": args.users, "items": args.items, "per_user": args.per_user},
        "ratings_per_part": args.ratings_per_part,
        "cpus": args.cpus,
        "small": small,
        "large": large,
        "worker_private_peak_ratio_large_to_small": large_peak / small_peak if small_peak else None,
        "ray_users_per_s_per_actor": per_actor,
        "estimate_100m_users_hours_on_n_actors": {
            n: 100_000_000 / (per_actor * n) / 3600 for n in (1, 16, 64, 256)
        },
    }
    (OUT / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
