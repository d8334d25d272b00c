"""Features for detectors (and later selection): TF-IDF, and cached MiniLM sentence embeddings."""

from reweighting.features.cache import cached_embeddings
from reweighting.features.sentence import MINILM, SentenceEncoder
from reweighting.features.tfidf import TfidfConfig, tfidf_features

__all__ = ["TfidfConfig", "tfidf_features", "SentenceEncoder", "MINILM", "cached_embeddings"]
