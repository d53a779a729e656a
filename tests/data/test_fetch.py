import hashlib
import http.server
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aerec.data import fetch
from aerec.data.fetch import FetchError, fetch_release
from aerec.errors import InputError


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def make_zip(root: Path, name: str) -> str:
    archive = root / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(f"{name}/ratings.csv", "userId,movieId,rating,timestamp\n1,2,4.0,3\n")
        zipped.writestr(f"{name}/README.txt", "generated for a test\n")
    return hashlib.md5(archive.read_bytes(), usedforsecurity=False).hexdigest()


def test_fetch_verifies_published_md5_and_unpacks(server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = server
    digest = make_zip(root, "ml-latest-small")
    (root / "ml-latest-small.zip.md5").write_text(f"{digest}  ml-latest-small.zip\n")
    folder = fetch_release("ml-latest-small", tmp_path / "dest", base_url=url)
    assert folder == tmp_path / "dest" / "ml-latest-small"
    assert (folder / "ratings.csv").read_text().startswith("userId,movieId")


def test_fetch_checks_pinned_md5(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = server
    make_zip(root, "ml-100k")
    monkeypatch.setitem(fetch.RELEASES, "ml-100k", fetch.Release("ml-100k", "0" * 32))
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch_release("ml-100k", tmp_path / "dest", base_url=url)
    assert not (tmp_path / "dest" / "ml-100k.zip").exists()  # nothing half-written is left
    assert not (tmp_path / "dest" / "ml-100k").exists()


def test_fetch_without_network_fails_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError) as caught:
        fetch_release("ml-100k", tmp_path, base_url=f"http://127.0.0.1:{port}", timeout=5)
    assert str(caught.value).startswith(f"cannot download http://127.0.0.1:{port}/ml-100k.zip")
    assert "\n" not in str(caught.value)


def test_fetch_bounds_the_unpacked_size_and_keeps_existing_folders(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = server
    digest = make_zip(root, "ml-latest-small")
    (root / "ml-latest-small.zip.md5").write_text(f"{digest}  ml-latest-small.zip\n")
    monkeypatch.setattr(fetch, "MAX_UNPACKED_BYTES", 40)  # the archive unpacks to 63 bytes
    with pytest.raises(FetchError, match="unpacks to 63 bytes in 2 files"):
        fetch_release("ml-latest-small", tmp_path / "dest", base_url=url)
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["ml-latest-small.zip"]
    mine = tmp_path / "dest" / "ml-latest-small"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="already exists"):
        fetch_release("ml-latest-small", tmp_path / "dest", base_url=url)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
