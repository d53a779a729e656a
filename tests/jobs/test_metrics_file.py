"""--metrics-file: the textfile-collector file, read back with prometheus_client's own
parser, after a published run and after a run a gate refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import nightly_run, run_aerec, shuffled_ids
from prometheus_client.parser import text_string_to_metric_families

from aerec.contracts import GATES
from aerec.errors import GateRefused
from aerec.jobs.metrics import with_metrics


def parsed(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of the file by name and labels."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(metrics: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str) -> float:
    (only,) = metrics[f"aerec_nightly_{name}"].values()
    return only


def test_a_published_run_then_a_refused_one(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    prom = tmp_path / "collector" / "aerec_nightly.prom"
    out = tmp_path / "recs"
    manifest = with_metrics(
        prom, "nightly", lambda: nightly_run(tiny_model, tiny_data[0], out, device="cpu")
    )
    first = parsed(prom)
    assert value(first, "last_run_success") == 1 and value(first, "last_run_exit_code") == 0
    assert value(first, "table_rows") == manifest["rows"]
    assert value(first, "table_users") == manifest["users"]
    assert value(first, "users_skipped") == manifest["users_skipped"]
    health = manifest["health"]
    assert value(first, "health_top_item_share") == pytest.approx(health["top_item_share"])
    assert value(first, "health_gini") == pytest.approx(health["gini"])
    quantiles = first["aerec_nightly_health_score_quantile"]
    assert quantiles[(("quantile", "0.5"),)] == pytest.approx(health["score_quantiles"]["p50"])
    labels = (("model_version", manifest["model_version"]), ("run", manifest["run"]))
    assert first["aerec_nightly_published_info"] == {labels: 1.0}
    assert set(first["aerec_nightly_gate_refused"].values()) == {0.0}

    shuffled = shuffled_ids(tiny_data[0], tmp_path / "shuffled.csv")
    with pytest.raises(GateRefused):
        with_metrics(prom, "nightly", lambda: nightly_run(tiny_model, shuffled, out, device="cpu"))
    second = parsed(prom)
    assert value(second, "last_run_success") == 0 and value(second, "last_run_exit_code") == 2
    refused = {dict(k)["gate"]: v for k, v in second["aerec_nightly_gate_refused"].items()}
    assert refused == {gate: float(gate == "min_popularity_agreement") for gate in GATES}
    # what is published did not change: its figures and its time are carried over
    for name in ("last_success_timestamp_seconds", "table_rows", "health_gini"):
        assert value(second, name) == value(first, name)
    assert value(second, "last_attempt_timestamp_seconds") > value(
        first, "last_attempt_timestamp_seconds"
    )


def test_the_nightly_command_writes_the_file(
    tiny_model: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    prom = tmp_path / "aerec_nightly.prom"
    args = ["nightly", "--model", str(tiny_model), "--ratings", str(tiny_data[0])]
    result = run_aerec(*args, "--out-dir", str(tmp_path / "recs"), "--metrics-file", str(prom))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "recs" / "current" / "manifest.json").read_text())
    assert value(parsed(prom), "table_rows") == manifest["rows"]
    assert [p.name for p in tmp_path.glob("*.prom*")] == [prom.name]  # no temporary left
