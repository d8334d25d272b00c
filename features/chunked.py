"""Encode texts in chunks elsewhere (e.g. on a Dask cluster); vectors come back to the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from thresher.features.cache import Encoder

if TYPE_CHECKING:
    from thresher.core.chunking import MapChunks


def encode_chunk(encoder: Encoder, texts: list[str]) -> np.ndarray:
    """On a worker: the encoder (its model loads there on first use) applied to one chunk."""
    return encoder.encode(texts)


class ChunkedEncoder:
    """An encoder whose ``encode`` runs ``chunk_rows`` texts at a time through ``map_chunks``."""

    def __init__(self, encoder: Encoder, map_chunks: MapChunks, chunk_rows: int) -> None:
        if chunk_rows < 1:
            raise ValueError(f"The 'chunk_rows' parameter must be >= 1. Got {chunk_rows} instead.")
        self.encoder = encoder
        self.map_chunks = map_chunks
        self.chunk_rows = chunk_rows

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return self.encoder.encode(texts)
        chunks = [(self.encoder, texts[i:i + self.chunk_rows]) for i in range(0, len(texts), self.chunk_rows)]
        return np.concatenate(self.map_chunks(encode_chunk, chunks)).astype(np.float32)
