"""The nightly job: locking, publication, pruning, faults and the downstream contract."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import onnx
import polars as pl
import pytest
from conftest import big_ratings, nightly_run, published_state, score_table

from aerec.contracts import LEGACY_LINKS
from aerec.errors import InputError, LockHeld
from aerec.io import pointer
from aerec.io.digest import file_sha256
from aerec.io.lock import run_lock


def nightly_cmd(model: Path, ratings: Path, out: Path, *extra: str) -> list[str]:
    """The nightly job as cron runs it."""
    return [
        sys.executable,
        "-m",
        "aerec",
        "nightly",
        "--model",
        str(model),
        "--ratings",
        str(ratings),
        "--out-dir",
        str(out),
        "--device",
        "cpu",
        *extra,
    ]


@pytest.fixture()
def published(tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path) -> Path:
    out = tmp_path / "recs"
    nightly_run(tiny_model, tiny_data[0], out, keep=2, device="cpu")
    return out


def current_manifest(out: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((out / "current" / "manifest.json").read_text())
    return manifest


def table_glob(out: Path) -> str:
    """The documented path of the published table."""
    return str(out / "current" / "recs" / "*.parquet")


def test_publishes_and_keeps_last_runs(
    published: Path, tiny_model: Path, tiny_data: tuple[Path, Path]
) -> None:
    manifest = current_manifest(published)
    [part] = manifest["parts"]  # one part unless --parts asks for more
    run = published / "runs" / manifest["run"]
    assert part["sha256"] == file_sha256(run / "recs" / part["file"])
    assert part["file"] == f"part-00000-{manifest['run']}.parquet"
    assert (run / "_SUCCESS").exists() and not (run / "_users").exists()
    for _ in range(2):
        nightly_run(tiny_model, tiny_data[0], published, keep=2, device="cpu", retain_minutes=0)
    runs = sorted(p.name for p in (published / "runs").iterdir())
    assert len(runs) == 2 and manifest["run"] not in runs
    assert current_manifest(published)["run"] == runs[-1]


def test_a_superseded_run_is_kept_for_slow_readers(
    published: Path, tiny_model: Path, tiny_data: tuple[Path, Path]
) -> None:
    """With --keep 1 a reader that resolved `current` keeps its run while retained."""
    reader_run = (published / "current").resolve()
    for _ in range(2):
        nightly_run(tiny_model, tiny_data[0], published, keep=1, device="cpu")
    assert pl.read_parquet(reader_run / "recs" / "*.parquet").height > 0  # still there
    nightly_run(tiny_model, tiny_data[0], published, keep=1, device="cpu", retain_minutes=0)
    assert not reader_run.exists()  # past retention, --keep 1 prunes it
    assert len(list((published / "runs").iterdir())) == 1


def test_second_run_exits_with_lock_code(
    published: Path, tiny_model: Path, tiny_data: tuple[Path, Path]
) -> None:
    with run_lock(published / ".lock"):
        with pytest.raises(LockHeld):
            nightly_run(tiny_model, tiny_data[0], published, device="cpu")
        result = subprocess.run(
            nightly_cmd(tiny_model, tiny_data[0], published),
            capture_output=True,
            text=True,
            check=False,
        )
    assert result.returncode == 75
    assert "another run holds the lock" in result.stderr.strip().splitlines()[-1]


def test_run_while_another_process_holds_the_lock(
    published: Path, tiny_model: Path, tiny_data: tuple[Path, Path]
) -> None:
    """Another process holds the lock: the run exits 75 and the publication is untouched;
    once the holder is gone the next run publishes."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from aerec.io.lock import run_lock\n"
            f"with run_lock({str(published / '.lock')!r}):\n"
            "    print('held', flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    before, before_run = published_state(published), current_manifest(published)["run"]
    result = subprocess.run(
        nightly_cmd(tiny_model, tiny_data[0], published), capture_output=True, text=True
    )
    assert result.returncode == 75, result.stderr
    assert published_state(published) == before
    holder.communicate("\n", timeout=30)
    again = subprocess.run(
        nightly_cmd(tiny_model, tiny_data[0], published), capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert current_manifest(published)["run"] != before_run


def run_and_kill_while_writing(command: list[str], runs: Path) -> int:
    """Start a run and SIGKILL it as soon as its table appears in a new run directory."""
    existing = {p.name for p in runs.iterdir()}
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        new = [p for p in runs.iterdir() if p.name not in existing]
        if new and any(new[0].iterdir()):  # the run's table is being written
            break
        time.sleep(0.001)
    os.kill(run.pid, signal.SIGKILL)
    return run.wait()


def test_kill_9_while_writing_leaves_published_table(
    published: Path, tiny_model: Path, tmp_path: Path
) -> None:
    ratings = big_ratings(tiny_model, tmp_path / "big.csv", 60_000)
    for _ in range(3):  # a run that finished before the kill landed proves nothing: retry
        before = published_state(published)
        code = run_and_kill_while_writing(
            # other ratings than the published table's, with its model: no churn gate
            nightly_cmd(tiny_model, ratings, published, "--max-churn", "1"),
            published / "runs",
        )
        if code == -signal.SIGKILL:
            break
    else:
        pytest.fail("every run finished before it could be killed")
    assert published_state(published) == before
    assert pl.read_parquet(table_glob(published)).height > 0
    manifest = nightly_run(
        tiny_model, ratings, published, device="cpu", max_churn=1
    )  # no lock left
    assert manifest["users"] == 60_000


def bad_inputs(tmp_path: Path, tiny_model: Path) -> dict[str, tuple[Path, Path]]:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(tiny_model.read_bytes()[: len(tiny_model.read_bytes()) // 2])
    mismatched = tmp_path / "mismatched.onnx"
    proto = onnx.load(str(tiny_model))
    for prop in proto.metadata_props:
        if prop.key == "aerec.item_ids":
            ids = json.loads(prop.value)
            prop.value = json.dumps(ids[::-1])
    onnx.save(proto, str(mismatched))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    malformed = tmp_path / "malformed.csv"
    malformed.write_text("user_id,item_id,rating\n1,2,three\n")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("user_id,item_id,rating\n1,999999,4\n2,999998,3\n")
    scale = tmp_path / "scale.csv"
    scale.write_text("user_id,item_id,rating\n1,2,11\n")
    good = tmp_path / "good.csv"
    good.write_text("user_id,item_id,rating\n1,2,4\n")
    return {
        "corrupt model": (corrupt, good),
        "item table mismatch": (mismatched, good),
        "empty ratings": (tiny_model, empty),
        "malformed ratings": (tiny_model, malformed),
        "unknown users only": (tiny_model, unknown),
        "out-of-range ratings": (tiny_model, scale),
    }


def test_bad_inputs_leave_output_untouched(
    published: Path, tiny_model: Path, tmp_path: Path
) -> None:
    before = published_state(published)
    runs_before = sorted(p.name for p in (published / "runs").iterdir())
    for case, (model, ratings) in bad_inputs(tmp_path, tiny_model).items():
        result = subprocess.run(
            nightly_cmd(model, ratings, published),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2, (case, result.stderr)
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("aerec: error: "), (case, last)
        assert published_state(published) == before, case
        assert sorted(p.name for p in (published / "runs").iterdir()) == runs_before, case


def test_downstream_duckdb_reads_the_contract(published: Path) -> None:
    path = table_glob(published)
    con = duckdb.connect()
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    types = {row[0]: row[1] for row in described}
    assert types == {
        "user_id": "BIGINT",
        "rank": "INTEGER",
        "item_id": "BIGINT",
        "score": "FLOAT",
        "source": "VARCHAR",
    }
    rows, users, bad_rank, dupes = con.execute(f"""
        SELECT count(*), count(DISTINCT user_id),
               count(*) FILTER (WHERE rank < 1 OR rank > 5),
               count(*) - count(DISTINCT (user_id, item_id))
        FROM read_parquet('{path}')""").fetchone()
    manifest = current_manifest(published)
    assert (rows, users, bad_rank, dupes) == (manifest["rows"], manifest["users"], 0, 0)
    ordered = con.execute(f"""
        SELECT count(*) FROM (
          SELECT user_id, rank, lag(user_id) OVER () AS pu, lag(rank) OVER () AS pr
          FROM read_parquet('{path}'))
        WHERE pu IS NOT NULL AND (user_id < pu OR (user_id = pu AND rank <= pr))""").fetchone()
    assert ordered == (0,)
    meta = dict(
        con.execute(
            f"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{path}')"
        ).fetchall()
    )
    assert meta["aerec.model_version"] == manifest["model_version"]
    assert meta["aerec.schema_version"] == "2"
    assert meta["aerec.score"] == manifest["score"] == "logit"  # the default model's kind


def test_downstream_polars_reads_the_contract(published: Path) -> None:
    recs = pl.read_parquet(table_glob(published))
    assert recs.equals(recs.sort("user_id", "rank"))
    [part] = (published / "current" / "recs").iterdir()
    assert pl.read_parquet_metadata(part)["aerec.k"] == "5"
    assert pl.scan_parquet(published / "current" / "recs").collect().equals(recs)  # the folder


def test_the_published_run_holds_the_table_in_a_folder_of_its_own(published: Path) -> None:
    manifest = current_manifest(published)
    assert os.readlink(published / "current") == f"runs/{manifest['run']}"
    assert manifest["table"] == "recs"
    run = published / "current"
    assert sorted(p.name for p in run.iterdir()) == [
        "_SUCCESS",
        "health.parquet",
        "manifest.json",
        "recs",
    ]
    assert [p.name for p in (run / "recs").iterdir()] == [r["file"] for r in manifest["parts"]]
    assert sorted(p.name for p in published.iterdir()) == [
        ".aerec",
        ".lock",
        "attempts.jsonl",
        "current",
        "runs",
    ]


def test_files_aerec_did_not_write_are_never_replaced(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "recs"
    out.mkdir()
    for name in LEGACY_LINKS:
        (out / name).write_text("someone else's")
    result = subprocess.run(
        nightly_cmd(tiny_model, tiny_data[0], out), capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr
    assert "is not an aerec published-runs directory" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(LEGACY_LINKS)
    assert all((out / name).read_text() == "someone else's" for name in LEGACY_LINKS)


def test_a_model_directory_is_not_a_published_directory(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / ".aerec").write_text('{"owner": "aerec", "kind": "model-versions"}\n')
    with pytest.raises(InputError, match="marker for model-versions"):
        nightly_run(tiny_model, tiny_data[0], models, device="cpu")
    assert [p.name for p in models.iterdir()] == [".aerec"]


def test_a_directory_of_an_aerec_before_markers_is_adopted(
    published: Path, tiny_model: Path, tiny_data: tuple[Path, Path]
) -> None:
    """An older aerec's directory: no marker, and its links through `current` in DIR."""
    (published / ".aerec").unlink()
    (published / "attempts.jsonl").unlink()  # an older aerec kept no attempts log
    for name in LEGACY_LINKS:
        os.symlink(f"current/{name}", published / name)
    nightly_run(tiny_model, tiny_data[0], published, device="cpu")
    assert json.loads((published / ".aerec").read_text())["kind"] == "published-runs"
    assert not any((published / name).is_symlink() for name in LEGACY_LINKS)  # they'd dangle


def test_prune_keeps_what_aerec_did_not_make(
    published: Path, tiny_model: Path, tiny_data: tuple[Path, Path]
) -> None:
    (published / "runs" / "notes").mkdir()
    (published / "runs" / "notes" / "keep.txt").write_text("mine")
    for _ in range(3):
        nightly_run(tiny_model, tiny_data[0], published, keep=1, device="cpu", retain_minutes=0)
    names = sorted(p.name for p in (published / "runs").iterdir())
    assert len(names) == 2 and names[-1] == "notes"
    assert (published / "runs" / "notes" / "keep.txt").read_text() == "mine"


def test_a_failed_switch_leaves_the_publication(
    published: Path,
    tiny_model: Path,
    tiny_data: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk fills up as the new pointer is made: the old run stays published."""
    before = published_state(published)

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pointer.os, "symlink", full)
    with pytest.raises(OSError, match="No space"):
        nightly_run(tiny_model, tiny_data[0], published, device="cpu")
    assert published_state(published) == before


def test_disk_full_leaves_nightly_publication(
    small_disk: Path, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = small_disk / "recs"
    nightly_run(tiny_model, tiny_data[0], out, device="cpu")
    before = published_state(out)
    ratings = big_ratings(tiny_model, tmp_path / "big.csv", 60_000)
    result = subprocess.run(nightly_cmd(tiny_model, ratings, out), capture_output=True, text=True)
    assert result.returncode == 1
    assert "No space left on device" in result.stderr.strip().splitlines()[-1]
    assert published_state(out) == before
    manifest = json.loads(before["manifest.json"])
    [part] = manifest["parts"]
    assert part["sha256"] == file_sha256(out / "current" / "recs" / part["file"])
    assert [p.name for p in (out / "runs").iterdir()] == [manifest["run"]]


def test_disk_full_leaves_score_all_publication(
    small_disk: Path, tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = small_disk / "recs.parquet"
    score_table(tiny_model, tiny_data[0], out, device="cpu")
    before = sorted((p.name, p.read_bytes()) for p in small_disk.iterdir())
    ratings = big_ratings(tiny_model, tmp_path / "big.csv", 60_000)
    with pytest.raises(OSError, match="No space"):
        score_table(tiny_model, ratings, out, device="cpu")
    assert sorted((p.name, p.read_bytes()) for p in small_disk.iterdir()) == before
