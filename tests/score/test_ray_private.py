"""A local Ray cluster started by --engine ray listens on loopback only."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'aerec[ray]')")


def descendants(root: int) -> set[int]:
    """`root` and every process below it."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.update(children)
        frontier += children
    return found


def socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue  # the process ended meanwhile
    return inodes


def address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A /proc/net/tcp{,6} local address (words in host order) as an IP address."""
    raw = bytes.fromhex(hex_address)
    ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return ipaddress.ip_address(socket.inet_ntop(family, ordered))


def listening(pids: set[int]) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the processes listen on."""
    inodes, found = socket_inodes(pids), []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                host, port = local.split(":")
                found.append((str(address(host)), int(port, 16)))
    return found


def is_loopback(text: str) -> bool:
    ip = ipaddress.ip_address(text)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def test_the_address_decoder_reads_proc_net_tcp() -> None:
    assert str(address("0100007F")) == "127.0.0.1"
    assert str(address("00000000")) == "0.0.0.0"
    assert is_loopback(str(address("0000000000000000FFFF00000100007F")))  # ::ffff:127.0.0.1
    assert not is_loopback(str(address("00000000000000000000000000000000")))  # ::


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc/net")
def test_score_all_on_a_local_cluster_listens_on_loopback_only(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """Every listening socket of the run's processes (driver, gcs_server, raylet, workers),
    sampled while it runs, is on loopback; no RAY_* variable is set beforehand. The
    cluster's session files are removed with it, and those a killed run left (a dead pid's
    directory) go too."""
    from test_ray_engine import as_parquet

    ratings = as_parquet(tiny_data[0], tmp_path / "ratings.parquet")
    scratch, env = short_tmpdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    abandoned = scratch / f"aerec-ray-{gone}-x1y2z3"
    (abandoned / "session_latest").mkdir(parents=True)
    command = [sys.executable, "-m", "aerec", "score-all", "--engine", "ray", "--device", "cpu"]
    command += ["--model", str(tiny_model), "--ratings", str(ratings)]
    run = subprocess.Popen(
        [*command, "--out", f"{tmp_path / 'out'}/"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    seen: set[tuple[str, int]] = set()
    while run.poll() is None:
        seen.update(listening(descendants(run.pid)))
        time.sleep(0.05)
    stderr = run.communicate()[1]
    assert run.returncode == 0, stderr[-2000:]
    # Ray Data's per-dataset INFO lines and its progress-bar warning are not shown
    assert "streaming_executor" not in stderr and "Progress bars disabled" not in stderr
    assert len(seen) >= 3  # at least gcs_server, raylet and a worker were seen listening
    assert sorted(s for s in seen if not is_loopback(s[0])) == []
    assert sorted(p.name for p in scratch.glob("*ray*")) == []  # nor Ray's own $TMPDIR/ray
    shutil.rmtree(scratch)


def short_tmpdir() -> tuple[Path, dict[str, str]]:
    """A TMPDIR short enough for Ray's socket paths (tmp_path is not), and the environment
    of a run that uses it, without any RAY_* variable."""
    scratch = Path(tempfile.mkdtemp(prefix="ar", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return scratch, {**env, "TMPDIR": str(scratch)}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc")
def test_sigterm_during_a_ray_run_exits_143_with_one_line_and_stops_the_cluster(
    tiny_model: Path, tmp_path: Path
) -> None:
    import polars as pl
    from conftest import big_ratings

    ratings = tmp_path / "ratings.parquet"
    pl.read_csv(big_ratings(tiny_model, tmp_path / "big.csv", 200_000)).write_parquet(ratings)
    out = tmp_path / "recs"
    command = [sys.executable, "-m", "aerec", "nightly", "--engine", "ray", "--device", "cpu"]
    command += ["--model", str(tiny_model), "--ratings", str(ratings), "--out-dir", str(out)]
    scratch, env = short_tmpdir()
    run = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    cluster: set[int] = set()
    deadline = time.monotonic() + 120
    while run.poll() is None and time.monotonic() < deadline:  # until an actor is scoring
        cluster = descendants(run.pid)
        titles = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in cluster if pid != run.pid
                  and Path(f"/proc/{pid}/cmdline").exists()]  # fmt: skip
        if any(b"PartScorer" in title or b"MapWorker" in title for title in titles):
            break
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before it could be terminated"
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 143, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("aerec: error: terminated (SIGTERM)")
    assert "Traceback" not in stderr
    assert not (out / "current").exists()
    time.sleep(2)
    alive = [pid for pid in cluster - {run.pid} if Path(f"/proc/{pid}").exists()]
    assert alive == [], "the cluster's processes outlived the run"
    assert sorted(p.name for p in scratch.glob("aerec-ray-*")) == []  # its session files too
    shutil.rmtree(scratch)


def test_a_tmpdir_too_long_for_rays_sockets_falls_back_to_rays_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aerec.score.engines.ray import RAY_SCRATCH_PREFIX, _session_dir

    short = Path(tempfile.mkdtemp(prefix="ar", dir="/tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(short))
    made = _session_dir()
    assert made is not None and made.name.startswith(f"{RAY_SCRATCH_PREFIX}{os.getpid()}-")
    shutil.rmtree(short)
    long = tmp_path / ("x" * 80)
    long.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long))
    assert _session_dir() is None
    assert list(long.iterdir()) == []  # nothing left behind
