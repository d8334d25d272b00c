"""One entry point from a feature config to the item x feature matrix every stage uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import duckdb
import numpy as np
from pydantic import Field, model_validator

from thresher.features.cache import cached_embeddings
from thresher.features.chunked import ChunkedEncoder
from thresher.features.numeric import numeric_features
from thresher.features.sentence import SentenceEncoder
from thresher.features.static import StaticEncoder
from thresher.features.tfidf import TfidfConfig, tfidf_features
from thresher.core.config import StageConfig
from thresher.core.device import DeviceName

if TYPE_CHECKING:
    from thresher.core.chunking import Chunking

EncoderName = Literal["tfidf", "minilm", "minilm-static", "numeric"]


class FeatureConfig(StageConfig):
    """Which features represent an item.

    ``tfidf``: word 1-2-grams of the text (fast, no model; see ``tfidf.py``). ``minilm``: the packaged
    all-MiniLM-L6-v2 sentence embeddings (~115-235 texts/s on 2 cores). ``minilm-static``: a static
    model distilled from it with model2vec (tens of thousands of texts/s; see ``static.py``).
    ``numeric``: the source columns named in ``numeric_columns``, standardised. Embeddings are cached
    in DuckDB by (encoder, item) and never recomputed.
    """

    # tfidf | minilm (the embedded sentence encoder) | minilm-static (its distilled static form) | numeric (source
    # columns)
    encoder: EncoderName = "tfidf"
    tfidf: TfidfConfig = TfidfConfig()  # TF-IDF's settings (encoder: tfidf)
    static_dims: int = Field(256, ge=2, le=384)  # minilm-static: PCA width of the distilled model
    # numeric: the source columns (kept in items.extra) used as features
    numeric_columns: list[str] = Field(default_factory=list)
    device: DeviceName = "auto"  # where minilm encodes: a GPU when torch sees one (auto), cpu, cuda[:N]

    @property
    def chunked(self) -> bool:
        """Whether the encoding runs in chunks on a cluster (embeddings; TF-IDF is fitted on all rows)."""
        return self.encoder in ("minilm", "minilm-static")

    @model_validator(mode="after")
    def _check(self) -> "FeatureConfig":
        if self.encoder == "numeric" and not self.numeric_columns:
            raise ValueError("encoder 'numeric' needs numeric_columns: the source columns to use as features.")
        if self.numeric_columns and self.encoder != "numeric":
            raise ValueError(f"numeric_columns is set but encoder is {self.encoder!r}; set encoder: numeric.")
        return self


def item_features(
    con: duckdb.DuckDBPyConnection, config: FeatureConfig, item_ids: list[str], texts: list[str], *,
    progress: bool = False, chunking: Chunking | None = None,
) -> np.ndarray:
    """The N x D feature matrix of the items, in ``item_ids`` order."""
    if config.encoder == "numeric":
        return numeric_features(con, item_ids, config.numeric_columns)
    return features_with_outside(con, config, item_ids, texts, [], progress=progress, chunking=chunking)[0]


def features_with_outside(
    con: duckdb.DuckDBPyConnection, config: FeatureConfig, item_ids: list[str], texts: list[str],
    outside_texts: list[str], *, progress: bool = False, chunking: Chunking | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of the items and of texts that are not items (e.g. a target file), in one space.

    TF-IDF is fitted on both together; embeddings of the items come from the cache, the outside
    texts are encoded (not cached: they have no item id). Numeric features need items.
    """
    if config.encoder == "numeric":
        raise ValueError("Numeric features come from item columns; texts from outside the database need a text encoder.")
    if config.encoder == "tfidf":
        both = tfidf_features(list(texts) + list(outside_texts), config.tfidf)
        return both[: len(texts)], both[len(texts):]
    encoder = (SentenceEncoder(device=config.device) if config.encoder == "minilm"
               else StaticEncoder(pca_dims=config.static_dims))
    if chunking is not None:  # encoded elsewhere, chunk by chunk; cached here (one writer)
        encoder = ChunkedEncoder(encoder, chunking.map_chunks, chunking.rows)
    inside = cached_embeddings(con, encoder, item_ids, texts, progress=progress)[0]
    if not outside_texts:
        return inside, np.zeros((0, inside.shape[1]), dtype=inside.dtype)
    return inside, encoder.encode(list(outside_texts), progress=progress)
