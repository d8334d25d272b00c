"""Linear separation (LSA, Albert et al. ECCV 2024): a hyperplane in feature space that
reproduces the small-loss detector's noisy flags; items on its noisy side are flagged.

Features are L2-normalised per row and standardised; a class-balanced logistic regression is fitted
with target "flagged by small-loss"; flagged = it predicts 1.

``mode="global"`` (the default) is the paper's form: one unregularised hyperplane over all items.
It suits the paper's web noise (images that belong to no class, which sit apart in feature space) but
cannot see an in-distribution label flip, which looks like any item of its true class.
``mode="per_class"`` (our deviation) fits one hyperplane per given label: among the items labelled k,
the flipped ones look like another class, which a hyperplane separates. Those fits are cross-fitted
(each item scored by a model that did not see its flag) and L2-regularised (``C``), so the hyperplane
generalises the small-loss flags instead of memorising them. Measured at 20 % symmetric noise: on
static MiniLM features (3 seeds) F1 0.834 / 0.932 (YouTube / SMS) per class against 0.417 / 0.384
global; on TF-IDF (YouTube, seed 0) 0.624 per class against 0.674 global. Use per_class with
sentence embeddings.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler, normalize
from sklearn.utils.validation import check_is_fitted

from thresher.reweighting.detect.base import DetectorResult, check_rows, spare_whole_labels


class LinearSeparation(BaseEstimator):
    """Fit the separating hyperplane of ``noisy`` (a small-loss flag) in feature space ``X``.

    When ``noisy`` flags nothing or everything there is nothing to separate: the result then
    repeats ``noisy`` and ``degenerate_`` says so. Scores are P(clean) under the hyperplane. With
    ``labels``, a label whose items would all be flagged gets none flagged.
    """

    def __init__(
        self, *, mode: Literal["global", "per_class"] = "global", C: float = 1.0, n_folds: int = 5,
        max_iter: int = 1000, small_loss_rule: Literal["gmm", "fraction"] = "gmm", small_loss_threshold: float = 0.5,
        random_state: int | None = 0,
    ) -> None:
        self.mode = mode
        self.small_loss_rule = small_loss_rule
        self.small_loss_threshold = small_loss_threshold
        self.C = C
        self.n_folds = n_folds
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, labels, *, pred_probs: np.ndarray | None = None, noisy: np.ndarray | None = None
            ) -> "LinearSeparation":
        """Separate the small-loss flags ``noisy`` of the given ``labels`` (computed from ``pred_probs``,
        or out of fold, with the ``small_loss_*`` settings when not given)."""
        labels = check_rows(X, labels)
        if self.mode not in ("global", "per_class"):
            raise ValueError(f"mode must be 'global' or 'per_class'. Got {self.mode!r} instead.")
        if noisy is None:
            from thresher.reweighting.detect.small_loss import SmallLoss

            noisy = SmallLoss(rule=self.small_loss_rule, threshold=self.small_loss_threshold, n_folds=self.n_folds,
                              random_state=self.random_state).fit(X, labels, pred_probs=pred_probs).result().is_issue
        noisy = check_rows(X, noisy, "noisy", dtype=bool)
        self.degenerate_ = bool(noisy.all() or not noisy.any())
        if self.degenerate_:
            self.p_clean_ = np.where(noisy, 0.0, 1.0)
            flags = noisy
        else:
            features = normalize(X)
            features = StandardScaler(with_mean=not sp.issparse(features)).fit_transform(features)
            if self.mode == "global":
                model = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=self.max_iter,  # unregularised
                                           random_state=self.random_state).fit(features, noisy.astype(int))
                self.p_clean_ = model.predict_proba(features)[:, list(model.classes_).index(0)]
            else:
                self.p_clean_ = self._per_class_p_clean(features, noisy, labels)
            flags = self.p_clean_ < 0.5
        self.is_noisy_ = spare_whole_labels(flags, labels)
        return self

    def _per_class_p_clean(self, features, noisy: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Out-of-fold P(clean) from one hyperplane per given label."""
        p_clean = np.where(noisy, 0.0, 1.0)  # a class with too few flags (or clean items) keeps its flags
        for k in np.unique(labels):
            members = np.flatnonzero(labels == k)
            target = noisy[members].astype(int)
            if min(target.sum(), len(target) - target.sum()) < self.n_folds:
                continue
            folds = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.random_state)
            for train, test in folds.split(members, target):
                model = LogisticRegression(C=self.C, class_weight="balanced", max_iter=self.max_iter,
                                           random_state=self.random_state)
                model.fit(features[members[train]], target[train])
                p_clean[members[test]] = model.predict_proba(features[members[test]])[:, list(model.classes_).index(0)]
        return p_clean

    def result(self) -> DetectorResult:
        check_is_fitted(self, "p_clean_")
        return DetectorResult("linear_separation", np.clip(self.p_clean_, 0.0, 1.0), self.is_noisy_)
