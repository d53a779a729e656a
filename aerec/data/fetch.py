"""Download a MovieLens release from GroupLens, verify its checksum and unpack it."""

from __future__ import annotations

import hashlib
import logging
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aerec.errors import AerecError, InputError, file_error
from aerec.io.atomic import atomic_path

log = logging.getLogger(__name__)

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"
MAX_UNPACKED_BYTES = 8 << 30  # the largest release, ml-latest, unpacks to about 1.3 GB
MAX_MEMBERS = 1_000


@dataclass(frozen=True)
class Release:
    """A published archive; md5 is None where GroupLens updates the release in place."""

    name: str
    md5: str | None


# MD5s of the fixed releases as GroupLens publishes them; the "latest" archives change
# over time, so their checksum is read from the .md5 file published beside the archive.
RELEASES = {
    r.name: r
    for r in (
        Release("ml-100k", "0e33842e24a9c977be4e0107933c0723"),
        Release("ml-1m", "c4d9eecfca2ab87c1945afe126590906"),
        Release("ml-10m", "ce571fd55effeba0271552578f2648bd"),
        Release("ml-20m", "cd245b17a1ae2cc31bb14903e1204af3"),
        Release("ml-25m", "6b51fb2759a8657d3bfcbfc42b592ada"),
        Release("ml-32m", None),
        Release("ml-latest-small", None),
        Release("ml-latest", None),
    )
}


class FetchError(AerecError):
    """The download failed or did not verify (exit code 1)."""


def _open(url: str, timeout: float) -> Any:
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FetchError(f"cannot download {url}: {reason}") from None


def _published_md5(url: str, timeout: float) -> str:
    with _open(url + ".md5", timeout) as response:
        words = response.read(4096).decode("ascii", "replace").split()
    digest = next((w.lower() for w in words if len(w) == 32), None)
    if digest is None:
        raise FetchError(f"{url}.md5 holds no MD5 checksum")
    return digest


def _check_size(archive: Path, zipped: zipfile.ZipFile) -> None:
    """Refuse an archive that would unpack to more than MAX_UNPACKED_BYTES or files
    (zipfile never writes more than a member's declared size)."""
    members = zipped.infolist()
    total = sum(member.file_size for member in members)
    if total > MAX_UNPACKED_BYTES or len(members) > MAX_MEMBERS:
        raise FetchError(
            f"{archive}: unpacks to {total:,} bytes in {len(members):,} files, more than "
            f"the {MAX_UNPACKED_BYTES:,} bytes and {MAX_MEMBERS:,} files a MovieLens release needs"
        )


def fetch_release(
    name: str, dest: str | Path, base_url: str = GROUPLENS_URL, timeout: float = 60.0
) -> Path:
    """Download `name`.zip into `dest`, verify its MD5, unpack it; return the unpacked folder."""
    if name not in RELEASES:
        raise InputError(f"unknown release {name!r}; known: {', '.join(RELEASES)}")
    release = RELEASES[name]
    dest = Path(dest)
    folder = dest / name
    if folder.exists() or folder.is_symlink():
        raise file_error(folder, "already exists; remove it or choose another --dest")
    dest.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{name}.zip"
    expected = release.md5 or _published_md5(url, timeout)
    archive = dest / f"{name}.zip"
    digest = hashlib.md5(usedforsecurity=False)
    with atomic_path(archive) as partial:
        with _open(url, timeout) as response, partial.open("wb") as out:
            log.info("downloading %s", url)
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            raise FetchError(
                f"{url}: checksum mismatch (md5 {digest.hexdigest()}, expected {expected})"
            )
    staging = dest / f".{name}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zipped:
            _check_size(archive, zipped)
            zipped.extractall(staging)
    except zipfile.BadZipFile as error:
        raise FetchError(f"{archive}: not a zip archive ({error})") from None
    inner = staging / name
    (inner if inner.is_dir() else staging).rename(folder)
    shutil.rmtree(staging, ignore_errors=True)
    log.info("unpacked %s into %s", archive, folder)
    return folder
