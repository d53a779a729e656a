"""Publish gates: a NaN model, a model of other data and a shrunken table publish nothing."""

import json
import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
import torch
from conftest import nightly_run, run_aerec, score_table, shuffled_ids

from aerec.contracts import ATTEMPTS_FILE
from aerec.errors import AerecError, InputError
from aerec.export import onnx_export
from aerec.export.onnx_export import export_onnx


@pytest.fixture()
def published(tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path) -> Path:
    out = tmp_path / "recs"
    nightly_run(tiny_model, tiny_data[0], out, device="cpu")
    return out


def snapshot(directory: Path) -> dict[str, bytes]:
    """Where `current` points and every file of the published run and of DIR itself (but
    the lock file, which holds the last runner's pid, and the log of attempts)."""
    run = directory / "current"
    logs = (".lock", ATTEMPTS_FILE)
    files = [p for p in directory.iterdir() if p.is_file() and p.name not in logs]
    state = {str(p.relative_to(directory)): p.read_bytes() for p in files}
    state.update({str(p.relative_to(run)): p.read_bytes() for p in run.rglob("*") if p.is_file()})
    state["current"] = os.readlink(run).encode()
    return state


def test_nan_model_publishes_nothing(
    published: Path,
    tiny_checkpoint: Path,
    tiny_data: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """export-onnx refuses such a model (its check fails); one made otherwise must not
    publish either."""
    broken = Path(shutil.copytree(tiny_checkpoint, tmp_path / "nan-checkpoint"))
    state = torch.load(broken / "weights.pt", weights_only=True)
    first = next(name for name in state if name.endswith("bias"))
    state[first] = torch.full_like(state[first], float("nan"))
    torch.save(state, broken / "weights.pt")
    with pytest.raises(AerecError, match="verification failed"):
        export_onnx(broken, tmp_path / "nan.onnx", k=5)
    monkeypatch.setattr(onnx_export, "verify_against_torch", lambda *args, **kwargs: None)
    export_onnx(broken, tmp_path / "nan.onnx", k=5)
    before = snapshot(published)
    result = run_aerec(
        "nightly",
        "--model",
        str(tmp_path / "nan.onnx"),
        "--ratings",
        str(tiny_data[0]),
        "--out-dir",
        str(published),
        "--device",
        "cpu",
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"aerec: error: the model scored NaN or \+inf for \d+ users of a batch \(first: user 1\); "
        r"nothing published",
        last,
    )
    assert snapshot(published) == before


def test_model_of_other_data_publishes_nothing(
    published: Path, tiny_model: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.csv"
    other.write_text(
        "user_id,item_id,rating\n" + "".join(f"{u},{90000 + u},4\n" for u in range(50))
    )
    before = snapshot(published)
    with pytest.raises(InputError, match=r"does not fit these ratings: 100% of ratings"):
        nightly_run(tiny_model, other, published, device="cpu")
    assert snapshot(published) == before


def test_shrunken_table_is_refused_unless_allowed(
    published: Path, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("\n".join(str(u) for u in range(1, 11)))  # 10 of 120 users
    before = snapshot(published)
    with pytest.raises(InputError, match=r"fewer than 50% of the 600 published"):
        nightly_run(tiny_model, tiny_data[0], published, device="cpu", users=users)
    assert snapshot(published) == before
    manifest = nightly_run(
        tiny_model, tiny_data[0], published, device="cpu", users=users, min_rows_fraction=0.0
    )
    assert manifest["rows"] == 50
    assert pl.read_parquet(published / "current" / "recs" / "*.parquet").height == 50
    assert json.loads((published / "current" / "manifest.json").read_text())["rows"] == 50


def test_a_single_file_table_is_gated_against_the_one_it_replaces(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("\n".join(str(u) for u in range(1, 11)))
    out = tmp_path / "recs.parquet"
    score_table(tiny_model, tiny_data[0], out, device="cpu")
    before = out.read_bytes()
    with pytest.raises(InputError, match=r"fewer than 50% of the 600 published"):
        score_table(tiny_model, tiny_data[0], out, device="cpu", users=users)
    assert out.read_bytes() == before


def test_ratings_unlike_the_models_training_data_publish_nothing(
    published: Path, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """Every id is known and every user has known items, but popularity says otherwise."""
    shuffled = shuffled_ids(tiny_data[0], tmp_path / "shuffled.csv")
    before = snapshot(published)
    with pytest.raises(InputError, match=r"do not look like the data the model was trained on"):
        nightly_run(tiny_model, shuffled, published, device="cpu")
    assert snapshot(published) == before
    # switched off (and the churn gate, which the shuffled ids trip as well)
    nightly_run(tiny_model, shuffled, published, device="cpu", min_agreement=-1.0, max_churn=1)


def test_a_week_of_new_items_still_publishes(
    published: Path, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    frame = pl.read_csv(tiny_data[0])
    new = frame.sample(n=100, seed=2).with_columns(pl.col("movieId") + 100_000)  # unknown ids
    week = tmp_path / "week.csv"
    pl.concat([frame, new]).unique(["userId", "movieId"]).write_csv(week)
    manifest = nightly_run(tiny_model, week, published, device="cpu")
    assert manifest["unknown_item_ratings"] == 100
