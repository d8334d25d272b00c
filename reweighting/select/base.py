"""The contract every selection method follows, as the noise detectors and LF kinds have theirs."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Selector(Protocol):
    """A selector is fitted on the pool and the target, in that order, then asked for a budget.

    ``X_pool`` (N rows) and ``X_target`` (n rows) are feature matrices, or lists of texts for the
    methods that read text; ``y_pool`` / ``y_target`` are class ids (methods that need no labels
    ignore them; -1 marks a target item without one). ``select(budget)`` returns pool indices, best
    first: a count, or a fraction of the pool in (0, 1]. Methods that score items set ``scores_``
    (higher = more useful for the target). Registered with its settings in
    :mod:`thresher.reweighting.select.registry`; ``tests/reweighting/test_selector_contract.py``
    checks every registered one.
    """

    def fit(self, X_pool: Any, y_pool: np.ndarray | None, X_target: Any, y_target: np.ndarray | None
            ) -> "Selector": ...

    def select(self, budget: int | float) -> np.ndarray: ...
