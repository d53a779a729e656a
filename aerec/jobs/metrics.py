"""--metrics-file: the Prometheus textfile-collector file of `aerec nightly` and `aerec
retrain`, written atomically by prometheus_client after every attempt (README "Metrics").

Each job's metrics carry its prefix (aerec_nightly_, aerec_retrain_), so both files can
lie in one collector directory. The figures of what is published (the table, the model
in use) and the last success's time are carried over from the file a failed attempt
finds, parsed with the library's own parser: they still describe what readers get.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from aerec.contracts import GATES, Manifest
from aerec.errors import exit_code_of

Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]

ATTEMPT_HELP = {
    "last_attempt_timestamp_seconds": "When the last attempt finished (Unix time).",
    "last_run_success": "1 when the last attempt published, else 0.",
    "last_run_duration_seconds": "How long the last attempt ran.",
    "last_run_exit_code": 'The last attempt\'s exit code (README "Exit codes").',
    "gate_refused": "1 for the gate that refused the last attempt's table, 0 for the others.",
}
NIGHTLY_HELP = {
    "last_success_timestamp_seconds": "When the published table was published (Unix time).",
    "table_rows": "Rows of the published table.",
    "table_users": "Users of the published table.",
    "users_skipped": "Users of the ratings without a rating of an item the model knows.",
    "users_fallback": "Users given the popularity fallback.",
    "unknown_item_ratings": "Ratings of items the model does not know.",
    "published_info": "The published table's model version and run, as labels.",
    "health_catalogue_coverage": "Share of the model's items in at least one list.",
    "health_top_item_share": "Share of the lists that hold the most frequent item.",
    "health_top10_share": "The 10 most frequent items' share of all rows.",
    "health_gini": "Gini index of the items' exposure.",
    "health_mean_popularity": "Mean training rating count of a recommended item.",
    "health_score_quantile": "Quantiles of the model's scores (sample).",
    "churn_changed_share": "Share of the users whose list changed against the table replaced.",
    "churn_mean_jaccard": "Mean Jaccard similarity of each user's old and new list.",
    "churn_users_added": "Users in the table and not in the one it replaced.",
    "churn_users_gone": "Users in the replaced table and not in this one.",
}
RETRAIN_HELP = {
    "last_success_timestamp_seconds": "When the last retrain finished (Unix time).",
    "candidate_ndcg": "The candidate's held-out NDCG@k in the gate (last attempt).",
    "current_ndcg": "The current model's held-out NDCG@k in the gate (last attempt).",
    "promoted": "1 when the last retrain promoted its candidate, else 0.",
    "model_info": "The model version in use, as a label.",
}
HELP = {"nightly": {**ATTEMPT_HELP, **NIGHTLY_HELP}, "retrain": {**ATTEMPT_HELP, **RETRAIN_HELP}}
PUBLISHED = {
    "nightly": set(NIGHTLY_HELP),
    "retrain": {"last_success_timestamp_seconds", "model_info"},
}


def with_metrics(
    path: Path | None, job: str, run: Callable[[], Mapping[str, Any]]
) -> Mapping[str, Any]:
    """Run the job's attempt and write its metrics to `path` (None: none), whatever the
    outcome; the attempt's error is raised again."""
    started = time.time()
    try:
        result = run()
    except BaseException as error:
        if path is not None:
            write_metrics(path, job, started, None, error)
        raise
    if path is not None:
        write_metrics(path, job, started, result, None)
    return result


def write_metrics(
    path: Path,
    job: str,
    started: float,
    result: Mapping[str, Any] | None,
    error: BaseException | None,
) -> None:
    """The metrics of one attempt of `job` ("nightly": `result` is the published manifest;
    "retrain": its outcome), or of its failure with `error`."""
    now = time.time()
    samples: Samples = {}
    if result is None:
        kept = set(PUBLISHED[job])
        samples = {name: v for name, v in _previous(path, job).items() if name in kept}
    else:
        samples.update(_figures(job, result))
        samples["last_success_timestamp_seconds"] = {(): now}
    samples["last_attempt_timestamp_seconds"] = {(): now}
    samples["last_run_success"] = {(): float(error is None)}
    samples["last_run_duration_seconds"] = {(): now - started}
    samples["last_run_exit_code"] = {(): float(exit_code_of(error) if error else 0)}
    refused = getattr(error, "gate", None)
    samples["gate_refused"] = {(("gate", gate),): float(gate == refused) for gate in GATES}
    _write(path, job, samples)


def _figures(job: str, result: Mapping[str, Any]) -> Samples:
    if job == "retrain":
        gate = result.get("gate") or {}
        found: Samples = {"promoted": {(): float(bool(result.get("promoted")))}}
        for name in ("candidate", "current"):
            if name in gate:
                found[f"{name}_ndcg"] = {(): float(gate[name])}
        version = str(result.get("version") or result.get("current") or "")
        found["model_info"] = {(("model_version", version),): 1.0}
        return found
    manifest: Manifest = dict(result)  # type: ignore[assignment]
    found = {
        "table_rows": {(): manifest["rows"]},
        "table_users": {(): manifest["users"]},
        "users_skipped": {(): manifest.get("users_skipped", 0)},
        "users_fallback": {(): manifest.get("users_fallback", 0)},
        "unknown_item_ratings": {(): manifest.get("unknown_item_ratings", 0)},
        "published_info": {
            (("model_version", manifest["model_version"]), ("run", manifest.get("run", ""))): 1
        },
    }
    health = manifest.get("health")
    if health is not None:
        found["health_catalogue_coverage"] = {(): health["catalogue_coverage"]}
        found["health_top_item_share"] = {(): health["top_item_share"]}
        found["health_top10_share"] = {(): health["top10_share"]}
        found["health_gini"] = {(): health["gini"]}
        if health["mean_popularity"] is not None:
            found["health_mean_popularity"] = {(): health["mean_popularity"]}
        found["health_score_quantile"] = {
            (("quantile", f"{int(q[1:]) / 100:g}"),): v
            for q, v in health["score_quantiles"].items()
        }
        churn = health["churn"]
        if churn is not None:
            found["churn_changed_share"] = {(): churn["changed_share"]}
            found["churn_mean_jaccard"] = {(): churn["mean_jaccard"]}
            found["churn_users_added"] = {(): churn["users_added"]}
            found["churn_users_gone"] = {(): churn["users_gone"]}
    return {
        name: {labels: float(v) for labels, v in values.items()} for name, values in found.items()
    }


def _previous(path: Path, job: str) -> Samples:
    """The samples of the file an earlier attempt wrote (none when absent or unparsable)."""
    prefix = f"aerec_{job}_"
    try:
        text = path.read_text(encoding="utf-8")
        families = list(text_string_to_metric_families(text))
    except (OSError, ValueError):
        return {}
    found: Samples = {}
    for family in families:
        for sample in family.samples:
            if sample.name.startswith(prefix):
                labels = tuple(sorted(sample.labels.items()))
                found.setdefault(sample.name.removeprefix(prefix), {})[labels] = sample.value
    return found


def _write(path: Path, job: str, samples: Samples) -> None:
    registry = CollectorRegistry()
    for name, values in sorted(samples.items()):
        label_names = sorted({key for labels in values for key, _ in labels})
        gauge = Gauge(f"aerec_{job}_{name}", HELP[job][name], label_names, registry=registry)
        for labels, value in values.items():
            (gauge.labels(**dict(labels)) if label_names else gauge).set(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
