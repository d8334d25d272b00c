"""The baseline selector: a uniformly random subset of the pool, the same for the same seed."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted


class RandomSelection(BaseEstimator):
    """Pool items in a random order fixed by ``random_state``; reads neither features nor labels.

    The baseline every other selector should beat at the same budget."""

    def __init__(self, *, random_state: int | None = 0) -> None:
        self.random_state = random_state

    def fit(self, X_pool, y_pool, X_target, y_target) -> "RandomSelection":
        n = len(X_pool) if isinstance(X_pool, list) else X_pool.shape[0]
        if n == 0:
            raise ValueError("The pool is empty: there is nothing to select.")
        self.order_ = np.random.default_rng(self.random_state).permutation(n)
        return self

    def select(self, budget: int | float) -> np.ndarray:
        from thresher.reweighting.select.color_filter import budget_count

        check_is_fitted(self, "order_")
        return self.order_[:budget_count(budget, len(self.order_))]
