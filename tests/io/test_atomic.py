"""atomic_group: everything written before the first rename, the marker last."""

import errno
from pathlib import Path

import pytest

from aerec.io import atomic
from aerec.io.atomic import atomic_group


def publish(directory: Path, table: str, manifest: str) -> None:
    with atomic_group(directory, ["t", "m", "_SUCCESS"]) as (t, m, s):
        t.write_text(table)
        m.write_text(manifest)
        s.write_text("")


def contents(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


def test_group_replaces_all_and_leaves_no_temporaries(tmp_path: Path) -> None:
    publish(tmp_path, "one", "m1")
    publish(tmp_path, "two", "m2")
    assert contents(tmp_path) == {"_SUCCESS": "", "m": "m2", "t": "two"}


def test_failure_inside_the_block_changes_nothing(tmp_path: Path) -> None:
    publish(tmp_path, "one", "m1")
    with pytest.raises(RuntimeError), atomic_group(tmp_path, ["t", "m", "_SUCCESS"]) as (t, _, _):
        t.write_text("half")
        raise RuntimeError("gate")
    assert contents(tmp_path) == {"_SUCCESS": "", "m": "m1", "t": "one"}


def test_disk_full_on_flush_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(tmp_path, "one", "m1")

    def full(path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(atomic, "_fsync_file", full)
    with pytest.raises(OSError, match="No space"):
        publish(tmp_path, "two", "m2")
    assert contents(tmp_path) == {"_SUCCESS": "", "m": "m1", "t": "one"}


def test_a_signal_as_a_temporary_is_made_leaves_none_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM reaches Python as an exception between two statements: one raised just as
    the second temporary is made must not leave that file (the CLI's SIGTERM test saw one)."""
    real_close = atomic.os.close
    closed: list[int] = []

    def close_then_interrupt(fd: int) -> None:
        real_close(fd)
        closed.append(fd)
        if len(closed) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "close", close_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic.AtomicGroup(tmp_path, ["recs.parquet", "recs.health.parquet", "_SUCCESS"])
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
