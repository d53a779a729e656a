"""The current pointer and the pruning of stamped directories."""

import os
from pathlib import Path

import pytest

from aerec.contracts import is_run_stamp, run_stamp
from aerec.errors import InputError
from aerec.io.pointer import link_through, resolve, switch
from aerec.io.stamped import prune_stamped


def test_switch_and_links_move_together(tmp_path: Path) -> None:
    for name, text in (("a", "old"), ("b", "new")):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "f").write_text(text)
    assert resolve(tmp_path / "current") is None
    switch(tmp_path / "current", Path("runs/a"))
    link_through(tmp_path, "current", ["f"])
    assert (tmp_path / "f").read_text() == "old"
    switch(tmp_path / "current", Path("runs/b"))
    assert (tmp_path / "f").read_text() == "new"
    assert resolve(tmp_path / "current") == tmp_path / "runs" / "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "f", "runs"]


def test_old_regular_files_become_links(tmp_path: Path) -> None:
    (tmp_path / "runs" / "a").mkdir(parents=True)
    for name in ("t", "_SUCCESS"):
        (tmp_path / name).write_text("legacy")
        (tmp_path / "runs" / "a" / name).write_text("run")
    switch(tmp_path / "current", Path("runs/a"))
    link_through(tmp_path, "current", ["t", "_SUCCESS"])
    assert os.readlink(tmp_path / "t") == "current/t"
    assert (tmp_path / "_SUCCESS").read_text() == "run"


def test_broken_or_foreign_pointer_is_an_error(tmp_path: Path) -> None:
    os.symlink("runs/gone", tmp_path / "current")
    with pytest.raises(InputError, match="not a directory"):
        resolve(tmp_path / "current")
    (tmp_path / "current").unlink()
    (tmp_path / "current").mkdir()
    with pytest.raises(InputError, match="expected aerec's symlink"):
        resolve(tmp_path / "current")


def test_prune_removes_only_aerec_stamped_directories(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    stamps = [f"2026010{day}T000000_000000Z" for day in range(1, 6)]
    for stamp in stamps:
        (runs / stamp).mkdir(parents=True)
        (runs / stamp / "_SUCCESS").write_text("")
    (runs / stamps[3] / "_SUCCESS").unlink()  # a killed run
    foreign = [runs / "notes", runs / "19990101T000000_000000Z.bak"]
    for path in foreign:
        path.mkdir()
    (runs / "readme.txt").write_text("mine")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, runs / "20200101T000000_000000Z")
    removed = prune_stamped(
        runs, 2, protect={stamps[0]}, finished=lambda p: (p / "_SUCCESS").exists()
    )
    assert removed == [stamps[1], stamps[3]]
    assert all(path.exists() for path in foreign) and (runs / "readme.txt").exists()
    assert elsewhere.exists() and (runs / "20200101T000000_000000Z").is_symlink()


def test_prune_does_not_follow_a_linked_folder(tmp_path: Path) -> None:
    target = tmp_path / "target"
    (target / "20260101T000000_000000Z").mkdir(parents=True)
    os.symlink(target, tmp_path / "runs")
    assert prune_stamped(tmp_path / "runs", 0) == []
    assert (target / "20260101T000000_000000Z").exists()


def test_run_stamps_are_recognised() -> None:
    assert is_run_stamp(run_stamp())
    assert not is_run_stamp("20260101T000000Z") and not is_run_stamp("notes")
