"""Text features for the detectors: TF-IDF over the item text."""

from __future__ import annotations

import scipy.sparse as sp
from pydantic import Field

from thresher.core.config import StageConfig


class TfidfConfig(StageConfig):
    """scikit-learn ``TfidfVectorizer`` settings (word n-grams, sublinear term frequency)."""

    max_features: int = Field(50_000, ge=1)  # vocabulary size at most (the most frequent terms)
    ngram_max: int = Field(2, ge=1, le=5)  # word n-grams up to this length
    min_df: int = Field(1, ge=1)  # terms in fewer documents are dropped (detect's C: auto may choose it when unset)
    sublinear_tf: bool = True  # 1 + log(tf) instead of raw term counts


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
