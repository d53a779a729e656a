"""A scoring host without torch: score-all, nightly and recommend run; training says why not.

torch (and onnxscript, the exporter's) are made unimportable in a child process, as on a
host where `pip install aerec` installed no extras.
"""

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

BLOCK = "import sys; sys.modules['torch'] = None; sys.modules['onnxscript'] = None; "


def run_without_torch(entry: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a console entry point (module:function) with torch unimportable."""
    module, function = entry.split(":")
    code = (
        f"{BLOCK}sys.argv = {[entry, *args]!r}; "
        f"from {module} import {function}; "
        "import aerec.score.pipeline; "
        f"{function}()"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_scoring_commands_run_without_torch(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    ratings, movies = (str(p) for p in tiny_data)
    scored = run_without_torch(
        "aerec.score.cli:main",
        *("--model", str(tiny_model), "--ratings", ratings, "--out", str(tmp_path / "r.parquet")),
    )
    assert scored.returncode == 0, scored.stderr
    assert pl.read_parquet(tmp_path / "r.parquet").height > 0
    nightly = run_without_torch(
        "aerec.cli:main",
        *("nightly", "--model", str(tiny_model), "--ratings", ratings),
        *("--out-dir", str(tmp_path / "nightly")),
    )
    assert nightly.returncode == 0, nightly.stderr
    manifest = json.loads((tmp_path / "nightly" / "current" / "manifest.json").read_text())
    assert manifest["rows"] > 0
    user = str(pl.read_parquet(tmp_path / "r.parquet")["user_id"][0])
    shown = run_without_torch(
        "aerec.cli:main",
        *("recommend", "--model", str(tiny_model), "--ratings", ratings),
        *("--movies", movies, "--user", user, "--k", "3"),
    )
    assert shown.returncode == 0, shown.stderr
    assert f"recommended for user {user}:" in shown.stdout


@pytest.mark.parametrize(
    ("entry", "name", "args"),
    [
        ("aerec.train.cli:main", "train-model", ("--ratings", "r.csv", "--out", "c")),
        ("aerec.export.cli:main", "export-onnx", ("--checkpoint", ".", "--out", "m.onnx")),
        ("aerec.cli:main", "aerec", ("retrain", "--ratings", "r.csv", "--model-dir", "m")),
    ],
)
def test_training_without_torch_is_one_line(entry: str, name: str, args: tuple[str, ...]) -> None:
    result = run_without_torch(entry, *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"{name}: error: this command needs torch, which is not installed: "
        "pip install 'aerec[train]'"
    ]
