"""Snorkel's LF summary (polarity, coverage, overlaps, conflicts, empirical accuracy)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from thresher.labeling.label_models import quiet_snorkel


def lf_summary(L: np.ndarray, lf_names: list[str], gold: np.ndarray | None = None) -> pd.DataFrame:
    """One row per LF: Snorkel's ``LFAnalysis.lf_summary``, with empirical accuracy on gold.

    Coverage, overlaps and conflicts are over all items; correct/incorrect/accuracy only over
    items that have a gold label (``gold`` uses -1 for "no gold").
    """
    tally = LFSummaryTally(lf_names)
    tally.add(L, gold)
    return tally.frame()


class LFSummaryTally:
    """The LF summary of items seen batch by batch: Snorkel's ``LFAnalysis`` on each batch, its
    fractions weighted by the batch's items and its counts summed, so that the summary of all the
    batches equals that of one matrix holding them all."""

    def __init__(self, lf_names: list[str]) -> None:
        self.lf_names = list(lf_names)
        m = len(self.lf_names)
        self.n_items = 0
        self._fractions = np.zeros((3, m))  # coverage, overlaps, conflicts, times items
        self._polarity: list[set[int]] = [set() for _ in range(m)]
        self._correct = np.zeros(m, dtype=np.int64)
        self._incorrect = np.zeros(m, dtype=np.int64)
        self._with_gold = False

    def add(self, L: np.ndarray, gold: np.ndarray | None = None) -> None:
        if L.ndim != 2 or L.shape[1] != len(self.lf_names):
            raise ValueError(f"L has shape {L.shape} but {len(self.lf_names)} LF names were given.")
        if len(L) == 0:
            return
        from snorkel.labeling import LFAnalysis  # snorkel pulls in sklearn: loaded when a summary is made

        with quiet_snorkel():
            part = LFAnalysis(L).lf_summary()
        self._fractions += part[["Coverage", "Overlaps", "Conflicts"]].to_numpy(dtype=float).T * len(L)
        self.n_items += len(L)
        for seen, labels in zip(self._polarity, part["Polarity"]):
            seen.update(int(label) for label in labels)
        if gold is not None and (gold >= 0).any():
            mask = gold >= 0
            L_gold, y = L[mask], gold[mask]
            voted = L_gold != -1
            self._correct += ((L_gold == y[:, None]) & voted).sum(axis=0)
            self._incorrect += ((L_gold != y[:, None]) & voted).sum(axis=0)
            self._with_gold = True

    def frame(self) -> pd.DataFrame:
        """One row per LF: polarity, coverage, overlaps, conflicts, correct, incorrect, emp_accuracy."""
        fractions = self._fractions / max(self.n_items, 1)
        summary = pd.DataFrame({"polarity": [sorted(p) for p in self._polarity], "coverage": fractions[0],
                                "overlaps": fractions[1], "conflicts": fractions[2]}, index=self.lf_names)
        summary["correct"] = pd.NA
        summary["incorrect"] = pd.NA
        summary["emp_accuracy"] = np.nan
        if self._with_gold:
            voted = self._correct + self._incorrect
            summary["correct"] = self._correct
            summary["incorrect"] = self._incorrect
            with np.errstate(invalid="ignore", divide="ignore"):
                summary["emp_accuracy"] = np.where(voted > 0, self._correct / voted, np.nan)
        return summary
