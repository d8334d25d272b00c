"""Given labels against gold labels, where an item has one: what every reweighting stage reports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GoldCheck:
    """The items' ``labels`` beside their ``gold`` ids (-1: no gold label); ``wrong`` = a gold label that differs."""

    labels: np.ndarray
    gold: np.ndarray

    @property
    def has(self) -> np.ndarray:
        return self.gold >= 0

    @property
    def wrong(self) -> np.ndarray:
        return (self.labels != self.gold) & self.has

    def error_rate(self, rows: np.ndarray | None = None) -> float:
        """The share of wrong labels among the items (of ``rows``, indices or a mask) that have gold."""
        has, wrong = (self.has, self.wrong) if rows is None else (self.has[rows], self.wrong[rows])
        return float(wrong.sum() / has.sum()) if has.any() else float("nan")

    def flags(self, flags: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        """How well ``flags`` find the wrong labels (precision, recall, F1) and ``scores`` rank them
        (AUROC; a lower score means more likely wrong), over the items with gold."""
        has = self.has
        flagged, truth = flags[has], self.wrong[has]
        tp = int((flagged & truth).sum())
        precision = tp / flagged.sum() if flagged.any() else float("nan")
        recall = tp / truth.sum() if truth.any() else float("nan")
        f1 = 2 * tp / (flagged.sum() + truth.sum()) if (flagged.sum() + truth.sum()) else float("nan")
        auroc = float("nan")
        if 0 < truth.sum() < len(truth):
            from sklearn.metrics import roc_auc_score

            auroc = float(roc_auc_score(truth, -scores[has]))
        return {"precision": float(precision), "recall": float(recall), "f1": float(f1), "auroc": auroc}
