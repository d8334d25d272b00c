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

from reweighting.detect.base import check_rows
from thresher.progress import track


def _nll(model: ClassifierMixin, X, y: np.ndarray) -> np.ndarray:
    """Per-item cross-entropy of ``y``; a class the model never saw costs the same as p = 1e-12."""
    proba = np.full((len(y), int(max(y.max(), model.classes_.max())) + 1), 1e-12)
    proba[:, model.classes_] = np.clip(model.predict_proba(X), 1e-12, 1.0)
    return -np.log(proba[np.arange(len(y)), y])


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


class ColorFilter(BaseEstimator):
    """Score labelled pool items by conditional loss reduction towards a labelled target set.

    After ``fit``: ``scores_`` (prior loss minus conditional loss, higher = more useful for the
    target), ``prior_loss_`` and ``conditional_loss_``. ``select(budget)`` returns pool indices.

    ``target_weight="balanced"`` gives the target set as much total weight as the pool part it is
    trained with; a float multiplies each target item's weight instead.
    """

    def __init__(self, estimator: ClassifierMixin | None = None, *, n_folds: int = 5,
                 target_weight: float | str = "balanced", random_state: int = 0, progress: bool = False) -> None:
        self.estimator = estimator
        self.n_folds = n_folds
        self.target_weight = target_weight
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
        folds = list(KFold(self.n_folds, shuffle=True, random_state=self.random_state).split(np.zeros(len(y_pool))))
        for train, held in track(folds, description="CoLoR-Filter folds", enabled=self.progress):
            prior = clone(base).fit(X_pool[train], y_pool[train])
            w = len(train) / len(y_target) if self.target_weight == "balanced" else float(self.target_weight)
            weights = np.concatenate([np.ones(len(train)), np.full(len(y_target), w)])
            cond = clone(base).fit(stack([X_pool[train], X_target]), np.concatenate([y_pool[train], y_target]),
                                   sample_weight=weights)
            prior_loss[held] = _nll(prior, X_pool[held], y_pool[held])
            cond_loss[held] = _nll(cond, X_pool[held], y_pool[held])
        self.prior_loss_, self.conditional_loss_ = prior_loss, cond_loss
        self.scores_ = prior_loss - cond_loss
        return self

    def select(self, budget: int | float, *, batch_size: int | None = None) -> np.ndarray:
        """Indices of the ``budget`` pool items with the largest loss reduction, best first.

        ``batch_size=None`` ranks the whole pool (the released code's global rule). With a batch
        size the pool is shuffled into batches and each keeps its share of the budget from its
        own candidates, the batch-wise rule of the paper's appendix F.
        """
        if not hasattr(self, "scores_"):
            raise ValueError("This ColorFilter is not fitted yet: call fit(...) first.")
        n = len(self.scores_)
        count = budget_count(budget, n)
        order = np.argsort(-self.scores_, kind="stable")
        if batch_size is None:
            return order[:count]
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Got {batch_size} instead.")
        shuffled = np.random.default_rng(self.random_state).permutation(n)
        batches = [shuffled[i:i + batch_size] for i in range(0, n, batch_size)]
        quota = np.array([len(b) * count / n for b in batches])
        keep = np.floor(quota).astype(int)
        for i in np.argsort(-(quota - keep), kind="stable")[: count - keep.sum()]:  # largest remainders
            keep[i] += 1
        chosen = np.concatenate([b[np.argsort(-self.scores_[b], kind="stable")[:k]] for b, k in zip(batches, keep)])
        return chosen[np.argsort(-self.scores_[chosen], kind="stable")]
