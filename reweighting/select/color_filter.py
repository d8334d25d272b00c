"""CoLoR-Filter for labelled items: keep what a target set makes much easier to predict.

Brandfonbrener et al. (NeurIPS 2024) score a candidate by the loss of a prior model minus the
loss of a conditional model (prior plus the small target set) and keep the largest reductions.
For labelled items the loss is the classifier's cross-entropy of the item's label. The prior is
K-fold cross-fitted over the pool, so no item is scored by a model that saw it; each fold's
conditional model is trained on the same pool part plus the target set, up-weighted. That is the
paper's "trained on prior and target" (its Eq. 5) in closed form: the paper fine-tunes instead,
but a convex model fine-tuned to convergence forgets its prior entirely.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from thresher.reweighting.detect.base import check_rows
from thresher.core.progress import track


def _nll(model: ClassifierMixin, X, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-item cross-entropy of ``y`` (a class the model never saw costs the same as p = 1e-12),
    and whether ``y`` is the model's most probable class."""
    proba = np.full((len(y), int(max(y.max(), model.classes_.max())) + 1), 1e-12)
    proba[:, model.classes_] = np.clip(model.predict_proba(X), 1e-12, 1.0)
    return -np.log(proba[np.arange(len(y)), y]), proba.argmax(1) == y


def budget_count(budget: int | float, n: int) -> int:
    """A budget as a number of items: an int, or a fraction of ``n`` in (0, 1]."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)):
        raise ValueError(f"budget must be a count or a fraction. Got {budget!r} instead.")
    count = int(round(budget * n)) if isinstance(budget, (float, np.floating)) and budget <= 1 else int(budget)
    if count < 1:
        raise ValueError(f"budget {budget!r} selects no item out of {n}; it must select at least one.")
    if count > n:
        raise ValueError(f"budget {budget!r} is larger than the pool ({n} items).")
    return count


def _largest_remainders(quota: np.ndarray, count: int) -> np.ndarray:
    """Whole numbers that sum to ``count``, each the floor of its quota plus one for the largest remainders."""
    keep = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - keep), kind="stable")[: count - keep.sum()]:
        keep[i] += 1
    return keep


class ScoreSelector:
    """Selection by ``scores_`` (higher = better; items outside an optional ``eligible_`` mask
    come after all the others), shared by the CoLoR-Filter variants."""

    random_state: int
    scores_: np.ndarray

    def select(self, budget: int | float, *, batch_size: int | None = None, labels: np.ndarray | None = None,
               class_shares: np.ndarray | None = None) -> np.ndarray:
        """Indices of the ``budget`` pool items with the largest loss reduction, best first.

        ``batch_size=None`` ranks the whole pool (the released code's global rule). With a batch
        size the pool is shuffled into batches and each keeps its share of the budget from its
        own candidates, the batch-wise rule of the paper's appendix F. With ``labels`` (the pool
        items' classes) and ``class_shares`` (e.g. the target's class distribution) each class
        keeps its share of the budget instead: the score has no term for class balance.
        """
        if not hasattr(self, "scores_"):
            raise ValueError(f"This {type(self).__name__} is not fitted yet: call fit(...) first.")
        n = len(self.scores_)
        count = budget_count(budget, n)
        if class_shares is not None:
            if labels is None or len(labels) != n:
                raise ValueError(f"Class-balanced selection needs one label per pool item ({n}).")
            if batch_size is not None:
                raise ValueError("Choose batch-wise or class-balanced selection, not both.")
            groups = [np.flatnonzero(labels == c) for c in range(len(class_shares))]
            keep = _largest_remainders(np.asarray(class_shares, dtype=float) / np.sum(class_shares) * count, count)
            short = [c for c, (g, k) in enumerate(zip(groups, keep)) if k > len(g)]
            if short:
                raise ValueError(f"Class(es) {short} have fewer pool items than their share of the budget; "
                                 f"lower the budget or select without class balance.")
            return self._best_first(np.concatenate([self._best_first(g)[:k] for g, k in zip(groups, keep)]))
        if batch_size is None:
            return self._best_first(np.arange(n))[:count]
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Got {batch_size} instead.")
        shuffled = np.random.default_rng(self.random_state).permutation(n)
        batches = [shuffled[i:i + batch_size] for i in range(0, n, batch_size)]
        keep = _largest_remainders(np.array([len(b) * count / n for b in batches]), count)
        return self._best_first(np.concatenate([self._best_first(b)[:k] for b, k in zip(batches, keep)]))

    def _best_first(self, idx: np.ndarray) -> np.ndarray:
        """``idx`` ordered eligible first, then by decreasing score (ties keep their order)."""
        eligible = getattr(self, "eligible_", None)
        late = np.zeros(len(idx), dtype=bool) if eligible is None else ~eligible[idx]
        return idx[np.lexsort((-self.scores_[idx], late))]


class ColorFilter(ScoreSelector, BaseEstimator):
    """Score labelled pool items by conditional loss reduction towards a labelled target set.

    After ``fit``: ``scores_`` (prior loss minus conditional loss, higher = more useful for the
    target), ``prior_loss_`` and ``conditional_loss_``. ``select(budget)`` returns pool indices.

    ``target_weight="balanced"`` gives the target set as much total weight as the pool part it is
    trained with; a float multiplies each target item's weight instead.

    ``require_agreement``: an item whose label the conditional model does not predict is ranked
    after every item whose label it does. Loss differences are steepest on wrong labels, so
    without this guard a target that shares the label space lifts mislabelled off-target items
    into the selection (measured: 22 % wrong labels in the selection vs 20 % in the pool; 3 %
    with the guard; see README).
    """

    def __init__(self, estimator: ClassifierMixin | None = None, *, n_folds: int = 5,
                 target_weight: float | str = "balanced", require_agreement: bool = True, random_state: int = 0,
                 progress: bool = False) -> None:
        self.estimator = estimator
        self.n_folds = n_folds
        self.target_weight = target_weight
        self.require_agreement = require_agreement
        self.random_state = random_state
        self.progress = progress

    def fit(self, X_pool, y_pool, X_target, y_target) -> "ColorFilter":
        """Cross-fit the prior and conditional models and score every pool item."""
        y_pool = check_rows(X_pool, y_pool, "y_pool", dtype=np.int64)
        y_target = check_rows(X_target, y_target, "y_target", dtype=np.int64)
        if len(y_target) == 0:
            raise ValueError("The target set is empty: CoLoR-Filter needs target items to condition on.")
        if len(y_target) >= len(y_pool):
            raise ValueError(f"The target set ({len(y_target)} items) must be smaller than the pool ({len(y_pool)}).")
        if X_pool.shape[1] != X_target.shape[1]:
            raise ValueError(f"Pool and target features differ in width: {X_pool.shape[1]} vs {X_target.shape[1]}.")
        if not 2 <= self.n_folds <= len(y_pool):
            raise ValueError(f"n_folds must be between 2 and the pool size. Got {self.n_folds} instead.")
        if self.target_weight != "balanced" and not (isinstance(self.target_weight, (int, float)) and self.target_weight > 0):
            raise ValueError(f"target_weight must be 'balanced' or > 0. Got {self.target_weight!r} instead.")
        base = self.estimator if self.estimator is not None else LogisticRegression(max_iter=2000)
        stack = sp.vstack if sp.issparse(X_pool) else np.vstack
        prior_loss = np.zeros(len(y_pool))
        cond_loss = np.zeros(len(y_pool))
        agrees = np.zeros(len(y_pool), dtype=bool)
        folds = list(KFold(self.n_folds, shuffle=True, random_state=self.random_state).split(np.zeros(len(y_pool))))
        for train, held in track(folds, description="CoLoR-Filter folds", enabled=self.progress):
            prior = clone(base).fit(X_pool[train], y_pool[train])
            w = len(train) / len(y_target) if self.target_weight == "balanced" else float(self.target_weight)
            weights = np.concatenate([np.ones(len(train)), np.full(len(y_target), w)])
            cond = clone(base).fit(stack([X_pool[train], X_target]), np.concatenate([y_pool[train], y_target]),
                                   sample_weight=weights)
            prior_loss[held] = _nll(prior, X_pool[held], y_pool[held])[0]
            cond_loss[held], agrees[held] = _nll(cond, X_pool[held], y_pool[held])
        self.prior_loss_, self.conditional_loss_ = prior_loss, cond_loss
        self.scores_ = prior_loss - cond_loss
        self.conditional_agrees_ = agrees
        self.eligible_ = agrees if self.require_agreement else np.ones(len(y_pool), dtype=bool)
        return self
