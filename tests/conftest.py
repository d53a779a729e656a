"""Shared fixtures: the MovieLens files in ../shared (skipped when absent) and tiny models."""

from __future__ import annotations

import dataclasses
import os

# A test's Ray cluster binds its services to loopback only (set before ray is imported).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from aerec.data.synth import SynthConfig, write_synthetic

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _engine(engine: str, ray: Any) -> Any:
    from aerec.score.engines.local import LocalEngine
    from aerec.score.engines.ray import RayEngine

    return RayEngine(ray) if engine == "ray" else LocalEngine()


def _request(model: Path, ratings: Path, fields: dict[str, Any]) -> Any:
    """A ScoreRequest from keyword options as the CLIs name them (gates folded in)."""
    from aerec.score.job import Gates, ScoreRequest

    names = [gate.name for gate in dataclasses.fields(Gates)]
    gates = Gates(**{name: fields.pop(name) for name in names if name in fields})
    paths = ("users", "replaces", "incremental_from")
    fields.update({name: Path(fields[name]) for name in paths if fields.get(name) is not None})
    return ScoreRequest(model=Path(model), ratings=Path(ratings), gates=gates, **fields)


def score_table(
    model: Path,
    ratings: Path,
    out: Path,
    parts: int | None = None,
    engine: str = "local",
    ray: Any = None,
    chunk_rows: int | None = None,
    overlap: bool = True,
    **fields: Any,
) -> Any:
    """score-all as its CLI runs it: --out a file, or a directory with --parts or Ray."""
    from aerec.score.cli import sink_for
    from aerec.score.engines.local import LocalEngine
    from aerec.score.pipeline import score_all

    chosen = _engine(engine, ray)
    if chunk_rows is not None or not overlap:
        chosen = LocalEngine(overlap, chunk_rows or LocalEngine().chunk_rows)
    sink = sink_for(str(out), parts, Path(ratings), chosen)
    return score_all(_request(model, ratings, fields), sink, chosen)


def nightly_run(
    model: Path,
    ratings: Path,
    out_dir: Path,
    parts: int | None = None,
    engine: str = "local",
    ray: Any = None,
    keep: int = 7,
    retain_minutes: float | None = None,
    incremental: bool = False,
    **fields: Any,
) -> Any:
    """aerec nightly as its CLI runs it."""
    from aerec.jobs.nightly import Retention, nightly

    retention = Retention(keep) if retain_minutes is None else Retention(keep, retain_minutes)
    request = _request(model, ratings, fields)
    return nightly(request, out_dir, _engine(engine, ray), parts, retention, incremental)


def assert_same_health(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Two tables' health figures agree (scores within 1e-5), their sample files aside;
    churn is compared when both have it."""
    aside = ("sample", "score_quantiles", "churn")
    assert {k: v for k, v in got.items() if k not in aside} == {
        k: v for k, v in want.items() if k not in aside
    }
    assert got["score_quantiles"] == pytest.approx(want["score_quantiles"], abs=1e-5)
    if got["churn"] is not None and want["churn"] is not None:
        assert {**got["churn"], "against": ""} == {**want["churn"], "against": ""}


def shuffled_ids(ratings: Path, out: Path) -> Path:
    """The ratings with their item ids permuted among themselves (a corrupt export)."""
    frame = pl.read_csv(ratings)
    ids = frame["movieId"].unique().sort()
    targets = ids.sample(fraction=1.0, shuffle=True, seed=1).to_list()
    permuted = dict(zip(ids.to_list(), targets, strict=True))
    frame.with_columns(pl.col("movieId").replace_strict(permuted)).write_csv(out)
    return out


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"MovieLens file {path} not present (../shared is absent in a fresh clone)")
    return path


def two_rated_rows() -> Any:
    """A training batch of two users over six items, ratings known (RatedRows)."""
    from aerec.data.csr import CsrMatrix
    from aerec.train.rows import TrainingRows

    matrix = CsrMatrix.from_indices(
        np.array([0, 0, 1, 1, 1]),
        np.array([0, 3, 1, 2, 5]),
        np.array([5.0, 2.0, 4.0, 4.0, 1.0]),
        2,
        6,
    )
    return TrainingRows(matrix, "cpu").batch(np.arange(2))


def run_aerec(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m aerec ARGS` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "aerec", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small synthetic data set (ratings.csv in ml-latest layout, movies.csv)."""
    folder = tmp_path_factory.mktemp("tiny")
    return write_synthetic(
        SynthConfig(users=120, items=80, ratings=3000, seed=5), folder / "ratings.csv"
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aerec.train.pipeline import TrainOptions, train_model

    out = tmp_path_factory.mktemp("ckpt") / "checkpoint"
    train_model(
        tiny_data[0], out, "user-temporal:0.2", TrainOptions(epochs=3, seed=1, device="cpu")
    )
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aerec.export.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(tiny_checkpoint, out, k=5)
    return out


def big_ratings(model: Path, path: Path, users: int) -> Path:
    """Many users over the model's items, so a run takes long enough to be killed; items
    drawn by their popularity in the model's training data, as real ratings would be."""
    from aerec.score.session import open_session

    _, info, _ = open_session(model, "cpu")
    rng = np.random.default_rng(0)
    user = np.repeat(np.arange(1, users + 1), 8)
    assert info.item_counts is not None
    popularity = info.item_counts / info.item_counts.sum()
    item = rng.choice(info.items.ids, size=user.size, p=popularity)
    frame = pl.DataFrame({"user_id": user, "item_id": item, "rating": 4.0}).unique(
        ["user_id", "item_id"]
    )
    frame.write_csv(path)
    return path


def published_state(out: Path) -> dict[str, bytes]:
    """Where `current` points and every file of the published run, as a reader sees them."""
    run = out / "current"
    state = {str(p.relative_to(run)): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    state["current"] = os.readlink(out / "current").encode()
    return state


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, so a write really runs out of space (root only)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def browser_dom(page: Path) -> str:
    """The page's DOM after a headless Chromium loaded it and ran its scripts (the test
    skips with the reason where Debian's chromium is not installed)."""
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout
