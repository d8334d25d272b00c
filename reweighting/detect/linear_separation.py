"""Linear separation (LSA, Albert et al. ECCV 2024): a hyperplane in feature space that
reproduces the small-loss detector's noisy flags; items on its noisy side are flagged.

Features are L2-normalised per row and standardised; an unregularised, class-balanced logistic
regression is fitted on all items with target "flagged by small-loss"; flagged = it predicts 1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler, normalize
from sklearn.utils.validation import check_is_fitted

from reweighting.detect.base import DetectorResult, check_rows


class LinearSeparation(BaseEstimator):
    """Fit the separating hyperplane of ``noisy`` (a small-loss flag) in feature space ``X``.

    When ``noisy`` flags nothing or everything there is nothing to separate: the result then
    repeats ``noisy`` and ``degenerate_`` says so. Scores are P(clean) under the hyperplane.
    """

    def __init__(self, *, max_iter: int = 1000, random_state: int | None = 0) -> None:
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, noisy) -> "LinearSeparation":
        noisy = check_rows(X, noisy, "noisy", dtype=bool)
        self.degenerate_ = bool(noisy.all() or not noisy.any())
        if self.degenerate_:
            self.p_clean_ = np.where(noisy, 0.0, 1.0)
            self.is_noisy_ = noisy.copy()
            return self
        features = normalize(X)
        features = StandardScaler(with_mean=not sp.issparse(features)).fit_transform(features)
        model = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=self.max_iter,  # unregularised
                                   random_state=self.random_state)
        model.fit(features, noisy.astype(int))
        self.p_clean_ = model.predict_proba(features)[:, list(model.classes_).index(0)]
        self.is_noisy_ = model.predict(features) == 1
        return self

    def result(self) -> DetectorResult:
        check_is_fitted(self, "p_clean_")
        return DetectorResult("linear_separation", np.clip(self.p_clean_, 0.0, 1.0), self.is_noisy_)
