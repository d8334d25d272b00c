"""Text features for the detectors: TF-IDF over the item text."""

from __future__ import annotations

import scipy.sparse as sp
from pydantic import Field

from thresher.core.config import StageConfig


class TfidfConfig(StageConfig):
    """scikit-learn ``TfidfVectorizer`` settings (word n-grams, sublinear term frequency)."""

    max_features: int = Field(50_000, ge=1)
    ngram_max: int = Field(2, ge=1, le=5)
    min_df: int = Field(1, ge=1)
    sublinear_tf: bool = True


def tfidf_features(texts: list[str], config: TfidfConfig) -> sp.csr_matrix:
    """Fit TF-IDF on ``texts`` and return the N x F sparse feature matrix."""
    if not texts:
        raise ValueError("Cannot compute features of zero texts.")
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        max_features=config.max_features, ngram_range=(1, config.ngram_max),
        min_df=config.min_df, sublinear_tf=config.sublinear_tf, strip_accents="unicode",
    )
    return vectorizer.fit_transform(texts).tocsr()
