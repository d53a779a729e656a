"""Every contract aerec shares between stages and with its users, in one place.

File names, ONNX metadata keys, the recs.parquet schema, the manifest and metrics shapes,
device choices and exit codes. Stages import these; none re-declares them. This module
imports numpy and polars only, so a scoring-only host can use it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Protocol, TypedDict, TypeVar

import numpy as np
import polars as pl

# --- exit codes (README "Exit codes") -------------------------------------------------
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_LOCKED = 75  # sysexits EX_TEMPFAIL: another run holds the lock, try later
EXIT_TERMINATED = 143  # 128 + SIGTERM: stopped, temporary files removed, nothing published
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_UNHEALTHY = 1  # aerec status: stale, nothing current, or the last attempt failed

# --- devices --------------------------------------------------------------------------
DEVICES = ("auto", "cpu", "cuda")

# --- publish gates (score-all, aerec nightly) ----------------------------------------
MAX_UNKNOWN_SHARE = 0.5  # refuse when more ratings (or users) than this are of unknown items
MIN_ROWS_FRACTION = 0.5  # refuse a table with fewer rows than this share of the published one
# refuse ratings whose item popularity does not rank like the model's training data's
# (Spearman over the items both have; bench/fit_check.py measured the choice)
MIN_POPULARITY_AGREEMENT = 0.3
MIN_SHARED_ITEMS = 20  # fewer shared items than this: too few to judge, not checked
MAX_BATCH_SIZE = 65_536  # users in one scoring batch (--batch-size)
CPU_BATCH_SIZE = 512  # --batch-size's default on the CPU provider
# --batch-size's default on CUDA: as many users as this much GPU memory holds, each with
# its [n_items] float32 scores three times over (the decoder's output, TopK's work) and
# its 256 padded ratings' first-layer rows at up to 1,024 units
CUDA_BATCH_MEMORY = 4 << 30


def cuda_batch_size(n_items: int) -> int:
    """--batch-size's default on CUDA for a model of n_items (CUDA_BATCH_MEMORY)."""
    per_user = 4 * (3 * n_items + 256 * 1024)
    return max(CPU_BATCH_SIZE, min(MAX_BATCH_SIZE, CUDA_BATCH_MEMORY // per_user))


# health gates (README "Health figures"; bench/health_thresholds.py measured the choice)
MAX_ITEM_SHARE = 0.8  # refuse a table whose most frequent item is in more of the lists
MIN_COVERAGE_RATIO = 0.5  # refuse a catalogue coverage below this share of the published's
MAX_CHURN = 0.5  # same model: refuse when more users' lists changed than this share
HEALTH_MIN_USERS = 50  # the item-share gate judges tables of at least this many users
# Every gate by its option's name (GateRefused.gate, the metrics' gate_refused label).
GATES = (
    "max_unknown",
    "min_popularity_agreement",
    "min_rows_fraction",
    "max_item_share",
    "min_coverage_ratio",
    "max_churn",
)

# --- checkpoint directory (train-model --out) -----------------------------------------
CHECKPOINT_WEIGHTS = "weights.pt"
CHECKPOINT_CONFIG = "config.json"
CHECKPOINT_ITEMS = "items.parquet"
CHECKPOINT_METRICS = "metrics.json"
CHECKPOINT_HISTORY = "history.csv"
CHECKPOINT_PLOT = "training.png"
CHECKPOINT_FILES = (
    CHECKPOINT_WEIGHTS,
    CHECKPOINT_CONFIG,
    CHECKPOINT_ITEMS,
    CHECKPOINT_METRICS,
    CHECKPOINT_HISTORY,
    CHECKPOINT_PLOT,
)

# --- ONNX scoring model metadata (export-onnx writes, the scorer reads) ---------------
PRECISIONS = ("fp32", "fp16", "int8")  # export-onnx --precision (aerec.export.quantize)
MODEL_META = {
    "version": "aerec.model_version",
    "n_items": "aerec.n_items",
    "k": "aerec.k",
    "item_ids": "aerec.item_ids",
    "item_ids_sha256": "aerec.item_ids_sha256",
    "metrics": "aerec.metrics",
    "aerec_version": "aerec.version",
    "input_format": "aerec.input_format",
    "score": "aerec.score",
    "precision": "aerec.precision",  # one of PRECISIONS (absent in older files: fp32)
}
# Optional metadata (absent in files of older versions): each item's rating count in the
# model's training data, aligned with the item table (the fit check compares with it).
MODEL_ITEM_COUNTS = "aerec.item_counts"
# What a recs row's `score` is, by the model's kind (MODEL_META/RECS_META "score").
SCORE_MEANINGS = {
    "logit": "the model's logit for the item (multinomial likelihood; higher ranks first, "
    "not a rating)",
    "rating": "the predicted rating on the data set's scale",
}
# The scoring graph reads a batch as its users' stored ratings, one row per user: the
# item columns (indices into the model's item table) and the ratings, [batch, width],
# each row padded to the batch's widest with value 0 and a column that user rated.
INPUT_FORMAT = "padded-v1"
GRAPH_INPUTS = ("columns", "values")
GRAPH_OUTPUTS = ("scores", "items")
GRAPH_ITEM_TABLE = "aerec_item_ids"  # the graph's int64 initializer that `items` gathers from


def item_ids_digest(item_ids: np.ndarray) -> str:
    """sha256 of the item id table as little-endian int64 bytes."""
    return hashlib.sha256(np.asarray(item_ids, dtype="<i8").tobytes()).hexdigest()


# --- the published table -------------------------------------------------------------
RECS_FILE = "recs.parquet"
MANIFEST_FILE = "manifest.json"
SUCCESS_FILE = "_SUCCESS"
SCHEMA_VERSION = "2"  # 2: the source column


HEALTH_SAMPLE_FILE = "health.parquet"  # beside a manifest: the health figures' user sample


def table_sidecars(table: str) -> tuple[str, str, str]:
    """A single-file table's own manifest, completion marker and health sample, named after
    it (so two tables in one folder never share them): recs.parquet -> recs.manifest.json,
    recs._SUCCESS, recs.health.parquet."""
    stem = table.removesuffix(".parquet")
    return f"{stem}.{MANIFEST_FILE}", f"{stem}.{SUCCESS_FILE}", f"{stem}.{HEALTH_SAMPLE_FILE}"


RECS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "rank": pl.Int32(),
    "item_id": pl.Int64(),
    "score": pl.Float32(),
    "source": pl.String(),  # a key of SOURCES
}
# What made a recs row (its `source`), and what its score then is.
SOURCES = {
    "model": "the model ranked it; score as the model's metadata says (aerec.score)",
    "popularity": "the user has no rating of an item the model knows: the model's training "
    "data's most rated items; score is the item's rating count there",
}
# The health figures' sample: every row of the users with the smallest splitmix64 hash of
# their id (aerec.io.tally), at most this many users; exact figures below it.
HEALTH_SAMPLE_USERS = 20_000
HEALTH_SAMPLE_SCHEMA: dict[str, pl.DataType] = {"user_hash": pl.UInt64(), **RECS_SCHEMA}
SCORE_QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99)  # of the model's scores (source model)
RECS_META = {
    "model_version": "aerec.model_version",
    "k": "aerec.k",
    "generated_at": "aerec.generated_at",
    "schema_version": "aerec.schema_version",
    "score": "aerec.score",
}

# --- partitioned tables: DIR/recs/part-NNNNN-<run>.parquet, each user in the part of its
# bucket; DIR/recs holds nothing else (readers glob it), the manifest and _SUCCESS sit in DIR.
# The run tag makes every file name unique to its run, so a reader that lists one run's
# files through a link that then moves fails to open them instead of mixing two runs.
TABLE_DIR = "recs"
PART_FILE = "part-{bucket:05d}-{run}.parquet"
USERS_FILE = "part-{bucket:05d}.parquet"  # a part's fingerprints, in USERS_DIR
_PART_NAME = re.compile(r"part-(\d{5})(-[0-9A-Za-z_]+)?\.parquet")


def part_file(bucket: int, run: str) -> str:
    return PART_FILE.format(bucket=bucket, run=run)


def users_file(bucket: int) -> str:
    return USERS_FILE.format(bucket=bucket)


def part_bucket(name: str) -> int:
    """The bucket of a part (or fingerprint) file by its name."""
    found = _PART_NAME.fullmatch(name)
    if found is None:
        raise ValueError(f"not a part file name: {name!r}")
    return int(found.group(1))


PARTITION_HASH = "splitmix64"  # of the user id as a 64-bit two's-complement integer
DEFAULT_PARTS = 16
MAX_PARTS = 100_000


USERS_DIR = "_users"  # a partitioned run's per-user fingerprints, by part (incremental runs)
RESCORED_FILE = "rescored.parquet"  # an incremental run's rescored user ids (user_id, sorted)


def mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's output function of each 64-bit value (wrapping arithmetic)."""
    x = np.asarray(values).astype(np.int64, copy=False).view(np.uint64)
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return np.asarray(x ^ (x >> np.uint64(31)))


def user_bucket(user_ids: np.ndarray, parts: int) -> np.ndarray:
    """Each user's part: splitmix64(user_id) mod parts (stable across runs and engines)."""
    return (mix64(user_ids) % np.uint64(parts)).astype(np.int64)


def partitioning(parts: int) -> Partitioning:
    return Partitioning(key="user_id", hash=PARTITION_HASH, parts=parts)


# --- nightly and retrain directories --------------------------------------------------
# A published directory (DIR/runs/<stamp>, MODEL_DIR/versions/<stamp>) is made current
# by switching the symlink CURRENT_LINK; the names users open are fixed links through it.
LOCK_FILE = ".lock"
# Every directory aerec owns as a whole (a nightly --out-dir, a retrain --model-dir) holds
# this marker, written when aerec made it; aerec writes into no other non-empty directory.
OWNER_MARKER = ".aerec"
OWNED_PUBLISHED = "published-runs"  # aerec nightly --out-dir (and score-all --out DIR/)
OWNED_MODELS = "model-versions"  # aerec retrain --model-dir
CURRENT_LINK = "current"
RUNS_DIR = "runs"
# Links an aerec before 0.2 kept in DIR (through `current`); removed at the first run now.
LEGACY_LINKS = (RECS_FILE, MANIFEST_FILE, SUCCESS_FILE)
ATTEMPTS_FILE = "attempts.jsonl"  # a job's last attempts, beside `current` (aerec status)
MAX_ATTEMPTS = 50
STALE_HOURS = 26.0  # aerec status: a published table older than this is stale
STALE_MODEL_HOURS = 192.0  # aerec status: a model version older than this (8 days) is stale
RETAIN_MINUTES = 60  # a superseded run is kept at least this long, for slow readers
MODEL_FILE = "model.onnx"
GATED_MODEL_FILE = (
    "gated.onnx"  # a refit version's model as the gate judged it (split's train side)
)
CHECKPOINT_DIR = "checkpoint"
VERSIONS_DIR = "versions"
CANDIDATES_DIR = "candidates"
MODEL_NAMES = (CHECKPOINT_DIR, MODEL_FILE)
_RUN_STAMP = re.compile(r"\d{8}T\d{6}_\d{6}Z")
_RUN_STAMP_FORMAT = "%Y%m%dT%H%M%S_%fZ"


def run_stamp() -> str:
    """A run, version or candidate directory's name: the UTC time, sortable, to the µs."""
    return datetime.now(timezone.utc).strftime(_RUN_STAMP_FORMAT)


def stamp_time(name: str) -> float:
    """When run_stamp() made `name` (Unix time)."""
    return datetime.strptime(name, _RUN_STAMP_FORMAT).replace(tzinfo=timezone.utc).timestamp()


def is_run_stamp(name: str) -> bool:
    """Whether `name` is one run_stamp() makes (so aerec made that directory)."""
    return _RUN_STAMP.fullmatch(name) is not None


class InputRecord(TypedDict):
    path: str  # as given
    resolved: str  # absolute, symlinks followed
    sha256: str


class PartRecord(TypedDict):
    """One part of a partitioned table: part-NNNNN.parquet holds the users of bucket NNNNN."""

    file: str
    rows: int
    users: int
    sha256: str


class Partitioning(TypedDict):
    key: str  # user_id
    hash: str  # PARTITION_HASH
    parts: int


class IncrementalRecord(TypedDict):
    from_run: str  # the run whose parts were reused
    rescored_users: int  # users new or changed since it, scored again
    rescored_file: str  # their ids (RESCORED_FILE), beside the manifest


class FingerprintsRecord(TypedDict):
    """A partitioned run's users' fingerprints, USERS_DIR/part-NNNNN.parquet by part."""

    version: int  # of the fingerprint function (aerec.score.incremental)
    files: list[PartRecord]  # rows = users


class ChurnRecord(TypedDict):
    """The table against the one it replaces, over the users both samples hold."""

    against: str  # the replaced table's run (or its generated_at)
    same_model: bool  # both tables are of the same model version and k
    users_compared: int  # users in both (every user in both when exact)
    changed_share: float  # of those, the share whose set of k items changed
    mean_jaccard: float  # mean Jaccard similarity of each user's old and new items
    users_added: int  # users in this table only (estimated from the samples unless exact)
    users_gone: int  # users in the replaced table only (likewise)
    exact: bool  # both samples hold every user of their table


class HealthRecord(TypedDict):
    """manifest.json "health": figures of the whole table (README "Health figures"): the
    exposure figures are of the lists the model ranked (source model), churn of all."""

    model_users: int  # users whose list the model ranked
    catalogue_coverage: float  # share of the model's items in at least one list
    top_item: int  # the item in the most lists
    top_item_share: float  # the share of lists that hold it
    top10_share: float  # the 10 most frequent items' share of all rows
    gini: float  # Gini index of the items' exposure, over the whole catalogue
    mean_popularity: float | None  # mean training rating count of a recommended item
    score_quantiles: dict[str, float]  # p1..p99 of the model's scores (in the sample)
    sample: str  # the sample's file, beside the manifest
    sample_users: int
    sample_exact: bool  # the sample holds every user: every figure is exact
    churn: ChurnRecord | None  # None: no table replaced, or it has no sample


class Manifest(TypedDict, total=False):
    """manifest.json beside a published table (README "manifest.json")."""

    file: str  # a single-file table
    table: str  # a partitioned table: the folder of its parts (TABLE_DIR), beside the manifest
    parts: list[PartRecord]  # a partitioned table's parts, files in `table`
    partitioning: Partitioning
    rows: int
    users: int
    k: int
    sha256: str  # of the single file
    model_version: str
    score: str  # a key of SCORE_MEANINGS
    generated_at: str
    schema_version: str
    input: InputRecord
    provider: str
    users_skipped: int
    unknown_item_ratings: int
    run: str  # set by `aerec nightly`: the run directory (DIR/runs/<run>) of the table
    incremental: IncrementalRecord  # an incremental run only
    fingerprints: FingerprintsRecord  # a partitioned run that an incremental run can reuse
    users_read: int  # users with a rating of an item the model knows
    users_without_candidates: int  # of those, users who rated every item the model knows
    users_fallback: int  # users without a known item given the popularity fallback
    users_not_found: int  # --users only: listed users with no rating at all
    health: HealthRecord


class Attempt(TypedDict):
    """One line of ATTEMPTS_FILE."""

    started: float  # Unix time
    finished: float
    exit_code: int  # 0: published (README "Exit codes")
    error: str  # the error's one line; "" when it published
    details: dict[str, Any]  # the run, version or candidate it made


class SideStats(TypedDict):
    ratings: int
    users: int
    items: int


class Dropped(TypedDict):
    total: int
    cold_user: int  # test ratings of users absent from train
    cold_item: int  # test ratings of items absent from train (user known)


class SplitStats(TypedDict):
    """metrics.json "split": the split's spec and the size of each side."""

    spec: str
    train: SideStats
    test: SideStats
    dropped: Dropped


class Validation(TypedDict):
    """How a model was selected: its metric on the validation slice, and the best epochs."""

    metric: str  # val_ndcg@10 or val_rmse
    best: float
    best_epoch: list[int]


# metrics.json: "test" and each baseline map metric names to values; "validation" is a
# Validation; "split" holds the split's statistics.
MetricValues = dict[str, float | None]
Metrics = dict[str, Any]

# --- progress -------------------------------------------------------------------------
T = TypeVar("T")


class Progress(Protocol):
    """Wraps an iterable to report progress: (items, description, total) -> the items."""

    def __call__(
        self, items: Iterable[T], description: str, total: int | None = None
    ) -> Iterable[T]: ...
