"""Scoring users in batches through one ONNX Runtime session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import polars as pl

from aerec.contracts import CPU_BATCH_SIZE, GRAPH_OUTPUTS, RECS_SCHEMA, cuda_batch_size
from aerec.errors import AerecError
from aerec.score.batch import Scorer, UserBatch, graph_feed, score_batch, topk_rows
from aerec.score.session import CUDA, ModelFile, open_session
from aerec.score.vectors import UserVectors


class BatchScorer:
    """Loads the session once; each call scores one batch of users from their entries.

    A batch runs through IO binding: its inputs are copied once to the provider's device
    (the GPU's memory on CUDA) and only the [n, k] scores and ids come back; the same code
    runs on the CPU provider."""

    def __init__(
        self, model: str | Path | ModelFile, device: str = "auto", threads: int = 0
    ) -> None:
        self.session, self.info, self.provider = open_session(model, device, threads)
        self.device = "cuda" if self.provider == CUDA else "cpu"  # where the inputs go

    def users_per_batch(self, asked: int | None) -> int:
        """--batch-size as asked, else this provider's default (contracts.CUDA_BATCH_MEMORY)."""
        if asked is not None:
            return asked
        return cuda_batch_size(len(self.info.items)) if self.device == "cuda" else CPU_BATCH_SIZE

    def __call__(self, batch: UserBatch) -> tuple[np.ndarray, np.ndarray]:
        feed = graph_feed(batch)
        scores, items = self.run_graph(feed)
        refuse_rated(batch, feed["columns"], scores, self.info.items.index(items))
        return scores, items

    def run_graph(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The graph's (scores, items) for its inputs, through IO binding."""
        binding = self.session.io_binding()
        for name, array in feed.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, self.device))
        for name in GRAPH_OUTPUTS:
            binding.bind_output(name, "cpu")  # the [n, k] outputs, copied back once
        self.session.run_with_iobinding(binding)
        scores, items = binding.copy_outputs_to_cpu()
        return scores, items


def refuse_rated(
    batch: UserBatch, rated: np.ndarray, scores: np.ndarray, columns: np.ndarray
) -> None:
    """Stop the run if the graph ranked an item a user rated: its output `columns`
    [n, k] against the batch's own rated columns [n, width] (the graph's input, padded
    with a rated column), for every slot it did not mask with -inf."""
    hit = (columns[:, :, None] == rated[:, None, :]).any(axis=2) & np.isfinite(scores)
    if hit.any():
        user, rank = (int(i) for i in np.argwhere(hit)[0])
        raise AerecError(
            f"the model ranked an item the user rated ({int(hit.sum())} slots of a batch; "
            f"first: user {int(batch.user_ids[user])}, rank {rank + 1}): the graph does "
            "not mask its input; nothing published"
        )


def length_batches(
    vectors: UserVectors, batch_size: int, max_entries: int | None = None
) -> Iterator[UserBatch]:
    """Batches of users of similar rating counts: at most batch_size users, and at most
    max_entries padded ratings (users x the widest user's count; default batch_size x 256)
    unless one user alone has more. Grouping by count keeps padding small."""
    budget = max_entries or batch_size * 256
    counts = vectors.ratings.row_counts()
    order = np.argsort(counts, kind="stable")
    ascending = counts[order]
    start = 0
    while start < len(order):
        # users start+1.. join while (users so far + 1) x their count fits: a product that
        # only grows along the ascending counts, so the batch ends at its first misfit
        window = ascending[start + 1 : start + batch_size]
        fits = np.arange(2, window.size + 2) * window <= budget
        stop = start + 1 + (window.size if fits.all() else int(np.argmin(fits)))
        rows = np.sort(order[start:stop])
        yield UserBatch(vectors.users.ids[rows], vectors.ratings, rows)
        start = stop


def score_users(
    scorer: Scorer,
    vectors: UserVectors,
    batch_size: int = 512,
    k: int | None = None,
    max_entries: int | None = None,
) -> pl.DataFrame:
    """Top-k rows for every user in `vectors`, sorted by user_id then rank: the batches'
    outputs are joined and made rows once (each Polars call hands the GIL to the reader
    thread and may wait for it back)."""
    users, scores, items = [], [], []
    for batch in length_batches(vectors, batch_size, max_entries):
        batch_scores, batch_items = score_batch(scorer, batch)
        users.append(batch.user_ids)
        scores.append(batch_scores)
        items.append(batch_items)
    if not users:
        return pl.DataFrame(schema=RECS_SCHEMA)
    rows = topk_rows(np.concatenate(users), np.concatenate(scores), np.concatenate(items), k)
    return rows.sort("user_id", "rank")
