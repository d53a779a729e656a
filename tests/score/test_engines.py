"""Engines are chosen and configured at the CLI: each owns its options, and the sink is
what --out names."""

from pathlib import Path

import pytest
from conftest import run_aerec

from aerec.errors import InputError
from aerec.io.sinks import DirectorySink, FileSink
from aerec.score.cli import sink_for
from aerec.score.engines.local import LocalEngine
from aerec.score.engines.ray import RayEngine
from aerec.score.job import ScoreRequest
from aerec.score.pipeline import score_all


def test_the_sink_is_what_out_names(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    local = LocalEngine()
    assert isinstance(sink_for(str(tmp_path / "recs.parquet"), None, ratings, local), FileSink)
    folder = sink_for(f"{tmp_path}/recs/", None, ratings, local)
    assert isinstance(folder, DirectorySink) and folder.parts == 16
    assert sink_for(str(tmp_path / "recs.parquet"), 3, ratings, local).parts == 3
    # the Ray engine writes parts only: a file name becomes a directory of parts
    assert isinstance(
        sink_for(str(tmp_path / "recs.parquet"), None, ratings, RayEngine()), DirectorySink
    )


def test_another_engines_option_is_a_usage_error(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "recs.parquet"
    args = ["--model", str(tiny_model), "--ratings", str(tiny_data[0]), "--out", str(out)]
    result = run_aerec("score-all", *args, "--ray-num-cpus", "2")
    assert result.returncode == 2
    assert "--ray-num-cpus applies only to --engine ray" in result.stderr
    assert not out.exists()


def test_fingerprints_need_a_partitioned_table(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    request = ScoreRequest(tiny_model, tiny_data[0], device="cpu", fingerprints=True)
    with pytest.raises(InputError, match="need a partitioned table"):
        score_all(request, FileSink(tmp_path / "recs.parquet"), LocalEngine())
    assert list(tmp_path.iterdir()) == []
