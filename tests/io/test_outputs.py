"""Outputs never replace, contain or lie inside what the run reads."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_aerec

from aerec.errors import InputError
from aerec.io.outputs import check_disjoint, claim_directory, is_legacy_layout, model_inputs


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_disjoint_paths_pass_and_overlaps_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ratings = data / "ratings.csv"
    ratings.write_text("user_id,item_id,rating\n1,1,4\n")
    os.symlink(ratings, tmp_path / "alias.csv")
    check_disjoint([tmp_path / "out" / "recs.parquet"], [ratings])
    for output in (ratings, tmp_path / "alias.csv", data, tmp_path, data / "sub" / "x"):
        with pytest.raises(InputError, match="input"):
            check_disjoint([output], [ratings, data])


def test_a_model_in_a_model_directory_brings_the_directory(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert model_inputs(plain / "model.onnx") == [plain / "model.onnx"]
    os.symlink("versions/x", plain / "current")
    assert model_inputs(plain / "model.onnx") == [plain / "model.onnx", plain]


@pytest.mark.parametrize("target", ["ratings", "model", "link-to-ratings"])
def test_score_all_refuses_to_write_over_an_input(
    target: str, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    ratings = shutil.copy(tiny_data[0], tmp_path / "ratings.csv")
    model = shutil.copy(tiny_model, tmp_path / "model.onnx")
    out = {"ratings": ratings, "model": model, "link-to-ratings": tmp_path / "out.parquet"}[target]
    if target == "link-to-ratings":
        os.symlink(ratings, out)
    before = {path: digest(Path(path)) for path in (ratings, model)}
    result = run_aerec(
        "score-all", "--model", str(model), "--ratings", str(ratings), "--out", str(out),
        "--device", "cpu",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "is, contains or lies inside the input" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {path: digest(Path(path)) for path in (ratings, model)} == before
    assert not list(tmp_path.glob("*manifest.json"))


def test_nightly_refuses_an_out_dir_holding_its_inputs(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    ratings = shutil.copy(tiny_data[0], tmp_path / "ratings.csv")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_aerec(
        "nightly", "--model", str(tiny_model), "--ratings", str(ratings),
        "--out-dir", str(tmp_path), "--device", "cpu",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_export_refuses_to_write_into_the_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> None:
    checkpoint = shutil.copytree(tiny_checkpoint, tmp_path / "checkpoint")
    before = sorted(p.name for p in checkpoint.iterdir())
    result = run_aerec(
        "export-onnx", "--checkpoint", str(checkpoint), "--out", str(checkpoint / "m.onnx")
    )
    assert result.returncode == 2, result.stderr
    assert sorted(p.name for p in checkpoint.iterdir()) == before


def never_legacy(_: Path) -> bool:
    return False


def test_a_new_or_empty_directory_is_claimed_and_marked(tmp_path: Path) -> None:
    for path in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        if path.name == "empty":
            path.mkdir()
        claim_directory(path, "published-runs", never_legacy)
        assert json.loads((path / ".aerec").read_text())["kind"] == "published-runs"
        claim_directory(path, "published-runs", never_legacy)  # marked: accepted again


@pytest.mark.parametrize(
    "contents", ["aerec-names", "symlinked-names", "other-kind", "marker-is-a-link"]
)
def test_a_directory_aerec_does_not_own_is_refused_untouched(contents: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "precious.parquet"
    elsewhere.write_text("theirs")
    if contents == "aerec-names":
        for name in ("recs.parquet", "manifest.json", "_SUCCESS"):
            (out / name).write_text("theirs")
    elif contents == "symlinked-names":
        os.symlink(elsewhere, out / "recs.parquet")
    elif contents == "other-kind":
        (out / ".aerec").write_text('{"owner": "aerec", "kind": "model-versions"}\n')
    else:
        os.symlink(elsewhere, out / ".aerec")
    before = {p.name: (os.readlink(p) if p.is_symlink() else p.read_bytes()) for p in out.iterdir()}
    with pytest.raises(InputError, match="not an aerec published-runs directory"):
        claim_directory(out, "published-runs", never_legacy)
    after = {p.name: (os.readlink(p) if p.is_symlink() else p.read_bytes()) for p in out.iterdir()}
    assert after == before and elsewhere.read_text() == "theirs"


def test_a_symlink_is_judged_by_the_directory_it_leads_to(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "manifest.json").write_text("{}")
    os.symlink(theirs, tmp_path / "link")
    with pytest.raises(InputError):
        claim_directory(tmp_path / "link", "published-runs", never_legacy)
    assert sorted(p.name for p in theirs.iterdir()) == ["manifest.json"]


def test_an_older_aerec_layout_is_recognised_by_its_links(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "runs" / "20260101T000000_000000Z").mkdir(parents=True)
    os.symlink("runs/20260101T000000_000000Z", out / "current")
    os.symlink("current/recs.parquet", out / "recs.parquet")
    (out / ".lock").write_text("")
    names, others = ["recs.parquet", "manifest.json", "_SUCCESS"], {".lock"}
    assert is_legacy_layout(out, names, "runs", others)
    (out / "recs.parquet").unlink()
    os.symlink("../elsewhere.parquet", out / "recs.parquet")
    assert not is_legacy_layout(out, names, "runs", others)
    (out / "recs.parquet").unlink()
    (out / "recs.parquet").write_text("a file aerec did not make")
    assert not is_legacy_layout(out, names, "runs", others)
