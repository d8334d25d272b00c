"""Item features for detectors and selection: TF-IDF, MiniLM (full or static), numeric columns."""

from thresher.lazy import lazy_exports

_EXPORTS = {
    "EncoderName": "reweighting.features.encode",
    "FeatureConfig": "reweighting.features.encode",
    "item_features": "reweighting.features.encode",
    "features_with_outside": "reweighting.features.encode",
    "TfidfConfig": "reweighting.features.tfidf",
    "tfidf_features": "reweighting.features.tfidf",
    "SentenceEncoder": "reweighting.features.sentence",
    "MINILM": "reweighting.features.sentence",
    "StaticEncoder": "reweighting.features.static",
    "MINILM_STATIC": "reweighting.features.static",
    "numeric_features": "reweighting.features.numeric",
    "cached_embeddings": "reweighting.features.cache",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
