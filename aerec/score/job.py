"""What a scoring run is asked to do (`ScoreRequest`), what it knows once planned
(`ScoreJob`), what an engine returns (`Scored`), and the `Engine` interface itself.

A request is built once from the options (score-all, nightly, a test, a benchmark); the
pipeline plans it into a job, an engine scores the job into a sink, and the publish step
gates and seals what the engine wrote. Engines live in aerec.score.engines; nothing below
the CLIs imports one: an engine is passed in as an instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import polars as pl

from aerec.contracts import (
    MAX_CHURN,
    MAX_ITEM_SHARE,
    MAX_UNKNOWN_SHARE,
    MIN_COVERAGE_RATIO,
    MIN_POPULARITY_AGREEMENT,
    MIN_ROWS_FRACTION,
    SCHEMA_VERSION,
    Manifest,
    Progress,
)
from aerec.io.digest import InputFiles
from aerec.io.sinks import RecsSink, Written, table_metadata
from aerec.score.fallback import Popularity
from aerec.score.session import ModelFile, ModelInfo
from aerec.score.vectors import ReadCounts


@dataclass(frozen=True)
class Gates:
    """When nothing is published (README "Publish gates")."""

    max_unknown: float = MAX_UNKNOWN_SHARE  # share of ratings or users of unknown items
    min_agreement: float = MIN_POPULARITY_AGREEMENT  # Spearman with the training counts
    min_rows_fraction: float = MIN_ROWS_FRACTION  # of the replaced table's rows
    # health gates (aerec.score.health): each off at its bound (1, 0, 1)
    max_item_share: float = MAX_ITEM_SHARE  # of the lists holding the most frequent item
    min_coverage_ratio: float = MIN_COVERAGE_RATIO  # of the replaced table's coverage
    max_churn: float = MAX_CHURN  # share of users whose lists changed, same model


@dataclass(frozen=True)
class ScoreRequest:
    """One scoring run, as asked."""

    model: Path
    ratings: Path
    k: int | None = None  # rows per user; default the model's k
    batch_size: int | None = None  # default: the provider's (BatchScorer.users_per_batch)
    device: str = "auto"
    users: Path | None = None  # a file of the user ids to score
    gates: Gates = field(default_factory=Gates)
    replaces: Path | None = None  # the manifest the row gate compares with (default: the sink's)
    incremental_from: Path | None = None  # a partitioned run whose unchanged users to reuse
    fingerprints: bool = False  # write each user's fingerprint (a later incremental run)
    run_name: str | None = None  # the manifest's "run" (default: a fresh run stamp)
    fallback: bool = True  # users without a known item get the popularity fallback


@dataclass(frozen=True)
class Reuse:
    """An earlier partitioned run of the same model, k and partitioning."""

    directory: Path
    manifest: Manifest


def stamped(run: Manifest) -> Manifest:
    """The run with its generation time and schema version."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Manifest(**run, generated_at=now, schema_version=SCHEMA_VERSION)


@dataclass(frozen=True)
class ScoreJob:
    """A request as planned: the model read once, the input listed once, the run's
    identity fixed (stamped before any file is written, so every part carries it)."""

    request: ScoreRequest
    model: ModelFile
    info: ModelInfo
    source: InputFiles
    run: Manifest  # k, model_version, score, run, generated_at, schema_version
    wanted: pl.Series | None  # the users to score (None: everyone)
    reuse: Reuse | None  # incremental: the run whose parts may be reused
    replaces: Path | None  # the manifest of the table the row gate compares with
    fallback: Popularity | None = None  # the rows of users without a known item
    progress: Progress | None = None

    @property
    def k(self) -> int:
        return self.run["k"]

    @property
    def metadata(self) -> dict[str, str]:
        """The Parquet key-value metadata of every file of the table."""
        return table_metadata(self.run)

    @property
    def writes_fingerprints(self) -> bool:
        return self.request.fingerprints or self.reuse is not None


@dataclass(frozen=True)
class Scored:
    """What an engine wrote into the sink, and what it read."""

    written: Written
    counts: ReadCounts
    provider: str  # the ONNX Runtime provider that scored
    records: Manifest = field(default_factory=Manifest)  # fingerprints, incremental


class Engine(Protocol):
    """Scores a job's users into a sink; never seals (the publish step does)."""

    parts_only: bool  # writes partitioned tables only (no single file)

    def check(self, source: InputFiles, sink: RecsSink) -> None:
        """Refuse an input or a sink this engine cannot use, before any work."""
        ...

    def parts_for(self, ratings: Path) -> int | None:
        """The engine's own choice of parts for these ratings (None: the caller's)."""
        ...

    def score(self, job: ScoreJob, sink: RecsSink) -> Scored:
        """Write every wanted user's top-k rows into the sink."""
        ...
