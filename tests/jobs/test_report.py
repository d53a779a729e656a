"""aerec report: one self-contained page whose images a real browser shows."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from conftest import browser_dom, nightly_run, run_aerec

PNG = b"\x89PNG\r\n\x1a\n"


def embedded_images(page: Path) -> list[bytes]:
    text = page.read_text()
    assert 'src="http' not in text and "src='http" not in text  # nothing fetched from outside
    return [
        base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    ]


def test_a_published_directory_report_shows_its_figures(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "recs"
    for _ in range(2):
        nightly_run(tiny_model, tiny_data[0], out, device="cpu")
    page = tmp_path / "report.html"
    result = run_aerec("report", str(out), "--out", str(page))
    assert result.returncode == 0, result.stderr
    images = embedded_images(page)
    assert len(images) == 3 and all(image.startswith(PNG) for image in images)
    assert "Item exposure" in page.read_text() and "Coverage and churn" in page.read_text()
    assert "3 of 3 figures shown." in browser_dom(page)


def test_a_directory_aerec_does_not_own_gets_no_report(tmp_path: Path) -> None:
    result = run_aerec("report", str(tmp_path), "--out", str(tmp_path / "r.html"))
    assert result.returncode == 2 and "is not a directory aerec nightly" in result.stderr
    assert not (tmp_path / "r.html").exists()
