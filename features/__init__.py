"""Item features for detectors and selection: TF-IDF, MiniLM (full or static), numeric columns."""

from thresher.core.lazy import lazy_exports

_EXPORTS = {
    "EncoderName": "thresher.features.encode",
    "FeatureConfig": "thresher.features.encode",
    "item_features": "thresher.features.encode",
    "features_with_outside": "thresher.features.encode",
    "TfidfConfig": "thresher.features.tfidf",
    "tfidf_features": "thresher.features.tfidf",
    "SentenceEncoder": "thresher.features.sentence",
    "MINILM": "thresher.features.sentence",
    "StaticEncoder": "thresher.features.static",
    "MINILM_STATIC": "thresher.features.static",
    "numeric_features": "thresher.features.numeric",
    "cached_embeddings": "thresher.features.cache",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
