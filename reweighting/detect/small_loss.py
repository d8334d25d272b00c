"""Small-loss detection: mislabelled items have large loss under a model of the data.

Per-item cross-entropy from out-of-fold predicted probabilities, min-max normalised, then either a
2-component 1-D Gaussian mixture (DivideMix: ``p_clean`` is the posterior of the low-loss
component; flag when ``p_clean < threshold``) or Co-teaching's fraction rule (flag the
``noise_rate`` share with the largest loss, the rate estimated by cleanlab). Settings follow
``../shared/papers/noise_detection.md`` section 0.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from cleanlab.count import num_label_issues
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from thresher.reweighting.detect.base import DetectorResult, check_rows, spare_whole_labels
from thresher.reweighting.detect.confident_learning import out_of_fold_proba


def item_losses(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Cross-entropy of each item's label under ``pred_probs`` (N x K)."""
    return -np.log(np.clip(pred_probs[np.arange(len(labels)), labels], 1e-12, 1.0))


def gmm_clean_posterior(losses: np.ndarray, *, random_state: int | None = 0) -> np.ndarray:
    """P(clean) per item: posterior of the low-mean component of a 2-GMM on min-max losses.

    Constant losses give P(clean) = 1 for every item (nothing to separate).
    """
    spread = losses.max() - losses.min() if len(losses) else 0.0
    if len(losses) < 2 or spread <= 1e-12:
        return np.ones(len(losses))
    normalised = ((losses - losses.min()) / spread).reshape(-1, 1)
    gmm = GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=random_state)
    gmm.fit(normalised)
    clean = int(np.argmin(gmm.means_.ravel()))
    return gmm.predict_proba(normalised)[:, clean]


def fraction_flags(losses: np.ndarray, rate: float) -> np.ndarray:
    """Co-teaching's rule: flag the ``rate`` fraction of items with the largest loss."""
    n_flag = int(round(min(max(rate, 0.0), 1.0) * len(losses)))
    flags = np.zeros(len(losses), dtype=bool)
    if n_flag:
        flags[np.argsort(-losses, kind="stable")[:n_flag]] = True
    return flags


class SmallLoss(BaseEstimator):
    """Flag items whose out-of-fold loss is large.

    ``rule="gmm"`` flags ``p_clean < threshold`` (0.5 as in DivideMix; PLS/LSA use a stricter
    0.05, i.e. p_noisy > 0.95); ``rule="fraction"`` flags the noise rate cleanlab estimates.
    Scores are ``p_clean`` (lower = more likely mislabelled). A label whose items would all be
    flagged gets none flagged (:func:`~reweighting.detect.base.spare_whole_labels`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(-2, 1, (60, 2)), rng.normal(2, 1, (60, 2))]
    >>> y = np.r_[np.zeros(60, int), np.ones(60, int)]
    >>> y[:4] = 1
    >>> result = SmallLoss(random_state=0).fit(X, y).result()
    >>> bool(result.is_issue[:4].all()), int(result.is_issue[4:].sum()) <= 6  # a few borderline items too
    (True, True)
    """

    def __init__(
        self, *, estimator: ClassifierMixin | None = None, n_folds: int = 5, rule: Literal["gmm", "fraction"] = "gmm",
        threshold: float = 0.5, random_state: int | None = 0, progress: bool = False,
    ) -> None:
        self.estimator = estimator
        self.n_folds = n_folds
        self.rule = rule
        self.threshold = threshold
        self.random_state = random_state
        self.progress = progress

    def fit(self, X, labels, *, pred_probs: np.ndarray | None = None) -> "SmallLoss":
        """Compute losses (from ``pred_probs`` when given, else K-fold out-of-fold predictions)."""
        labels = check_rows(X, labels)
        if self.rule not in ("gmm", "fraction"):
            raise ValueError(f"The 'rule' parameter of SmallLoss must be 'gmm' or 'fraction'. Got {self.rule!r} instead.")
        if pred_probs is None:
            estimator = self.estimator if self.estimator is not None else LogisticRegression(max_iter=2000)
            pred_probs = out_of_fold_proba(estimator, X, labels, n_folds=self.n_folds,
                                           random_state=self.random_state, progress=self.progress)
        self.labels_ = labels
        self.pred_probs_ = pred_probs
        self.losses_ = item_losses(labels, pred_probs)
        self.p_clean_ = gmm_clean_posterior(self.losses_, random_state=self.random_state)
        return self

    def noise_rate(self) -> float:
        """cleanlab's estimate of the share of wrong labels (``num_label_issues`` / N)."""
        check_is_fitted(self, "pred_probs_")
        return float(num_label_issues(self.labels_, self.pred_probs_) / len(self.labels_))

    def result(self) -> DetectorResult:
        check_is_fitted(self, "p_clean_")
        if self.rule == "gmm":
            flags = self.p_clean_ < self.threshold
        else:
            flags = fraction_flags(self.losses_, self.noise_rate())
        return DetectorResult("small_loss", self.p_clean_, spare_whole_labels(flags, self.labels_))
