"""The metadata keys of an aerec ONNX scoring model, shared by exporter and scorer."""

from __future__ import annotations

import hashlib

import numpy as np

META = {
    "version": "aerec.model_version",
    "n_items": "aerec.n_items",
    "k": "aerec.k",
    "item_ids": "aerec.item_ids",
    "item_ids_sha256": "aerec.item_ids_sha256",
    "metrics": "aerec.metrics",
    "aerec_version": "aerec.version",
}


def item_ids_digest(item_ids: np.ndarray) -> str:
    """sha256 of the item id table as little-endian int64 bytes."""
    return hashlib.sha256(np.asarray(item_ids, dtype="<i8").tobytes()).hexdigest()
