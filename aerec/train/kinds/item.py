"""I-AutoRec (Sedhain et al. 2015): reconstructs an item's ratings by all users under
masked MSE; predicts ratings for evaluation, cannot score user vectors (not exportable)."""

from __future__ import annotations

import logging

import numpy as np

from aerec.data.csr import CsrMatrix, batches
from aerec.train.kinds.rating import RatingAutoEncoder
from aerec.train.metrics import ScoreBlock
from aerec.train.predict import model_scores, predict_observed

log = logging.getLogger(__name__)

# An item-based model ranks from its whole items x users reconstruction; above this many
# entries (800 MB of float32) it does not rank.
MAX_DENSE_ENTRIES = 200_000_000


class ItemAutoEncoder(RatingAutoEncoder):
    name = "item-autorec"
    reads_user_rows = False

    @staticmethod
    def oriented(matrix: CsrMatrix) -> CsrMatrix:
        return matrix.transpose()

    def score_block(self, train: CsrMatrix, device: str = "cpu") -> ScoreBlock | None:
        if train.n_rows * train.n_cols > MAX_DENSE_ENTRIES:
            log.info(
                "ranking of the item-based model skipped: its %d x %d reconstruction is too "
                "large to hold",
                train.n_cols,
                train.n_rows,
            )
            return None
        items = train.transpose()
        full = np.concatenate(
            [
                model_scores(self.network, items, rows, device)
                for rows in batches(np.arange(items.n_rows), 1024)
            ]
        )
        return lambda rows: full[:, rows].T

    def predict(self, train: CsrMatrix, test: CsrMatrix, device: str = "cpu") -> np.ndarray:
        transposed = test.transpose()
        predicted = predict_observed(self.network, train.transpose(), transposed, device)
        # Back from item-major to user-major order: sort the transposed entries by (user, item).
        users = transposed.indices.astype(np.int64)
        items = np.repeat(np.arange(transposed.n_rows), transposed.row_counts())
        return predicted[np.lexsort((items, users))]
