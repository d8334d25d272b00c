"""Item features for detectors and selection: TF-IDF, MiniLM (full or static), numeric columns."""

from reweighting.features.cache import cached_embeddings
from reweighting.features.encode import EncoderName, FeatureConfig, features_with_outside, item_features
from reweighting.features.numeric import numeric_features
from reweighting.features.sentence import MINILM, SentenceEncoder
from reweighting.features.static import MINILM_STATIC, StaticEncoder
from reweighting.features.tfidf import TfidfConfig, tfidf_features

__all__ = [
    "EncoderName", "FeatureConfig", "item_features", "features_with_outside", "TfidfConfig", "tfidf_features", "SentenceEncoder", "MINILM",
    "StaticEncoder", "MINILM_STATIC", "numeric_features", "cached_embeddings",
]
