"""Vectors computed once: embeddings cached in DuckDB by (encoder, item_id)."""

from __future__ import annotations

import logging
from typing import Protocol

import duckdb
import numpy as np
import pyarrow as pa

from thresher.storage.connection import registered, transaction

logger = logging.getLogger(__name__)


class Encoder(Protocol):
    """What the cache needs of an encoder: a stable name, a width and ``encode``."""

    name: str
    dimension: int

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray: ...


def cached_embeddings(
    con: duckdb.DuckDBPyConnection, encoder: Encoder, item_ids: list[str] | pa.Array, texts: list[str], *,
    progress: bool = False,
) -> tuple[np.ndarray, int]:
    """Embeddings of the items in ``item_ids`` order, encoding only those not cached yet.

    Returns the N x D matrix and how many items were encoded in this call.
    """
    if len(item_ids) != len(texts):
        raise ValueError(f"item_ids has {len(item_ids)} entries but texts has {len(texts)}; they must match.")
    ids = item_ids if isinstance(item_ids, pa.Array) else pa.array(item_ids, pa.string())
    wanted = pa.table({"item_id": ids, "position": pa.array(np.arange(len(item_ids)), pa.int64())})
    with registered(con, _wanted=wanted):
        found = con.execute(
            "SELECT w.position, e.vector FROM _wanted w JOIN embeddings e "
            "ON e.item_id = w.item_id AND e.encoder = ?", [encoder.name]).fetchall()
    matrix = np.zeros((len(item_ids), encoder.dimension), dtype=np.float32)
    have = np.zeros(len(item_ids), dtype=bool)
    for position, vector in found:
        matrix[position] = vector
        have[position] = True
    missing = np.flatnonzero(~have)
    if len(missing):
        vectors = encoder.encode([texts[i] for i in missing], progress=progress)
        matrix[missing] = vectors
        new = pa.table({
            "encoder": pa.array([encoder.name] * len(missing), pa.string()),
            "item_id": ids.take(pa.array(missing, pa.int64())),
            "vector": pa.array(list(vectors), pa.list_(pa.float32())),
        })
        with transaction(con):
            with registered(con, _new_vectors=new):
                con.execute("INSERT INTO embeddings SELECT encoder, item_id, vector FROM _new_vectors")
        logger.info("Encoded %d items with %s (%d from the cache)", len(missing), encoder.name, int(have.sum()))
    return matrix, int(len(missing))
