"""The hybrid the LSA paper argues for, and a voting ensemble of detectors.

Hybrid: rounds alternate linear separation (even rounds) and small-loss (odd rounds); before each
round the loss model is re-fitted on the items currently kept, so flagged items no longer shape
the losses. The last round's flags and scores are the result.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from thresher.reweighting.detect.base import DetectorResult, check_rows
from thresher.reweighting.detect.confident_learning import out_of_fold_proba
from thresher.reweighting.detect.linear_separation import LinearSeparation
from thresher.reweighting.detect.small_loss import SmallLoss


def kept_proba(clf: ClassifierMixin, X, labels: np.ndarray, kept: np.ndarray, *, n_folds: int,
               random_state: int | None) -> tuple[np.ndarray, bool]:
    """Out-of-fold probabilities for kept items; a model fitted on all kept items for the others.
    The flag is True when it fell back to out-of-fold over every item, because some class has
    fewer than ``n_folds`` kept items (the probabilities of a first round, then)."""
    K = int(labels.max()) + 1
    if (np.bincount(labels[kept], minlength=K) < n_folds).any():
        return out_of_fold_proba(clf, X, labels, n_folds=n_folds, random_state=random_state), True
    probs = np.zeros((len(labels), K))
    index = np.flatnonzero(kept)
    probs[index] = out_of_fold_proba(clf, X[index], labels[index], n_folds=n_folds, random_state=random_state)
    rest = np.flatnonzero(~kept)
    if len(rest):
        model = clone(clf).fit(X[index], labels[index])
        probs[np.ix_(rest, model.classes_)] = model.predict_proba(X[rest])
    return probs, False


class Hybrid(BaseEstimator):
    """Alternate linear separation and small-loss over ``rounds``, re-fitting on kept items.

    ``flag_history_`` holds how many items each round flagged, ``rounds_`` what each round ran
    (its step, what its loss model was fitted on, what it flagged), reported in the result's info:
    a round whose re-fit fell back to every item says so.
    """

    def __init__(self, *, estimator: ClassifierMixin | None = None, n_folds: int = 5, rounds: int = 4,
                 threshold: float = 0.5, lsa_mode: Literal["global", "per_class"] = "global",
                 random_state: int | None = 0) -> None:
        self.estimator = estimator
        self.lsa_mode = lsa_mode
        self.n_folds = n_folds
        self.rounds = rounds
        self.threshold = threshold
        self.random_state = random_state

    def fit(self, X, labels, *, pred_probs: np.ndarray | None = None) -> "Hybrid":
        labels = check_rows(X, labels)
        if self.rounds < 1:
            raise ValueError(f"The 'rounds' parameter of Hybrid must be >= 1. Got {self.rounds} instead.")
        clf = self.estimator if self.estimator is not None else LogisticRegression(max_iter=2000)
        kept = np.ones(len(labels), dtype=bool)
        self.flag_history_, self.rounds_ = [], []
        for round_index in range(self.rounds):
            if round_index == 0:
                fitted_on = "the given probabilities" if pred_probs is not None else "every item"
                probs = pred_probs if pred_probs is not None else out_of_fold_proba(
                    clf, X, labels, n_folds=self.n_folds, random_state=self.random_state)
            else:
                probs, fell_back = kept_proba(clf, X, labels, kept, n_folds=self.n_folds, random_state=self.random_state)
                fitted_on = (f"every item (fallback: a class has fewer than n_folds={self.n_folds} kept items)"
                             if fell_back else "the kept items")
            small = SmallLoss(threshold=self.threshold, random_state=self.random_state).fit(X, labels, pred_probs=probs).result()
            if round_index % 2 == 0:
                current = LinearSeparation(mode=self.lsa_mode, random_state=self.random_state).fit(
                    X, labels, noisy=small.is_issue).result()
            else:
                current = small
            kept = ~current.is_issue
            self.flag_history_.append(int(current.is_issue.sum()))
            self.rounds_.append({"step": "linear_separation" if round_index % 2 == 0 else "small_loss",
                                 "loss_model_on": fitted_on, "flagged": int(current.is_issue.sum())})
        self.scores_, self.is_issue_ = current.scores, current.is_issue
        return self

    def result(self) -> DetectorResult:
        check_is_fitted(self, "scores_")
        fallbacks = sum("fallback" in r["loss_model_on"] for r in self.rounds_)
        return DetectorResult("hybrid", self.scores_, self.is_issue_,
                              {"rounds": self.rounds_, "fallback_rounds": fallbacks})
