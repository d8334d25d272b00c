"""Confident learning (cleanlab) on out-of-fold predicted probabilities."""

from __future__ import annotations


import numpy as np
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from thresher.reweighting.detect.base import DetectorResult, FilterBy, check_rows
from thresher.core.progress import track



def out_of_fold_proba(
    clf: ClassifierMixin, X, labels: np.ndarray, *, n_folds: int = 5, random_state: int | None = 0,
    progress: bool = False,
) -> np.ndarray:
    """N x K predicted probabilities where each item is scored by a model that never saw it."""
    labels = np.asarray(labels)
    K = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=K)
    if (counts < n_folds).any():
        raise ValueError(
            f"Each class needs at least n_folds={n_folds} items for out-of-fold predictions. "
            f"Got class counts {counts.tolist()} instead."
        )
    pred_probs = np.zeros((len(labels), K))
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state).split(np.zeros(len(labels)), labels)
    for train, test in track(list(folds), description="Cross-validating", enabled=progress):
        model = clone(clf).fit(X[train], labels[train])
        pred_probs[np.ix_(test, model.classes_)] = model.predict_proba(X[test])
    return pred_probs


class ConfidentLearning(BaseEstimator):
    """Find label issues with cleanlab from out-of-fold probabilities of ``estimator``.

    ``fit(X, labels)`` computes the K-fold out-of-sample ``pred_probs_``; ``score()`` returns
    cleanlab's self-confidence label quality (lower = more likely wrong) and ``find_issues()``
    cleanlab's ``find_label_issues`` flags.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(-2, 1, (50, 2)), rng.normal(2, 1, (50, 2))]
    >>> y = np.r_[np.zeros(50, int), np.ones(50, int)]
    >>> y[:3] = 1  # three flipped labels
    >>> result = ConfidentLearning(random_state=0).fit(X, y).result()
    >>> bool(result.is_issue[:3].all()), int(result.is_issue[3:].sum())
    (True, 0)
    """

    def __init__(
        self, *, estimator: ClassifierMixin | None = None, n_folds: int = 5,
        filter_by: FilterBy = "prune_by_noise_rate", random_state: int | None = 0, progress: bool = False,
    ) -> None:
        self.estimator = estimator
        self.n_folds = n_folds
        self.filter_by = filter_by
        self.random_state = random_state
        self.progress = progress

    def fit(self, X, labels, *, pred_probs: np.ndarray | None = None) -> "ConfidentLearning":
        """Compute K-fold out-of-fold probabilities (or take ``pred_probs`` computed that way)."""
        labels = check_rows(X, labels)
        estimator = self.estimator if self.estimator is not None else LogisticRegression(max_iter=2000)
        self.labels_ = labels
        self.pred_probs_ = pred_probs if pred_probs is not None else out_of_fold_proba(
            estimator, X, labels, n_folds=self.n_folds, random_state=self.random_state, progress=self.progress
        )
        return self

    def score_items(self) -> np.ndarray:
        """Label quality in [0, 1] per item; lower means more likely mislabelled."""
        check_is_fitted(self, "pred_probs_")
        return get_label_quality_scores(self.labels_, self.pred_probs_, method="self_confidence")

    def find_issues(self) -> np.ndarray:
        """Boolean mask of items cleanlab flags as label issues."""
        check_is_fitted(self, "pred_probs_")
        # n_jobs=1: cleanlab otherwise forks a multiprocessing.Pool, and forking a process that runs
        # Prefect's, DuckDB's and torch's threads can deadlock the child (a lock held at fork time).
        return find_label_issues(self.labels_, self.pred_probs_, filter_by=self.filter_by, n_jobs=1)

    def result(self) -> DetectorResult:
        return DetectorResult("confident_learning", self.score_items(), self.find_issues())
