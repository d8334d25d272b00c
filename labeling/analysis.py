"""Snorkel's LF summary (polarity, coverage, overlaps, conflicts, empirical accuracy)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from snorkel.labeling import LFAnalysis

from thresher.labeling.model import quiet_snorkel


def lf_summary(L: np.ndarray, lf_names: list[str], gold: np.ndarray | None = None) -> pd.DataFrame:
    """One row per LF: Snorkel's ``LFAnalysis.lf_summary``, with empirical accuracy on gold.

    Coverage, overlaps and conflicts are over all items; correct/incorrect/accuracy only over
    items that have a gold label (``gold`` uses -1 for "no gold").
    """
    if L.shape[1] != len(lf_names):
        raise ValueError(f"L has {L.shape[1]} columns but {len(lf_names)} LF names were given.")
    with quiet_snorkel():
        summary = LFAnalysis(L).lf_summary()
    summary.index = lf_names
    summary = summary.rename(columns=str.lower)[["polarity", "coverage", "overlaps", "conflicts"]]
    summary["correct"] = pd.NA
    summary["incorrect"] = pd.NA
    summary["emp_accuracy"] = np.nan
    if gold is not None and (gold >= 0).any():
        mask = gold >= 0
        L_gold, y = L[mask], gold[mask]
        voted = L_gold != -1
        correct = ((L_gold == y[:, None]) & voted).sum(axis=0)
        incorrect = ((L_gold != y[:, None]) & voted).sum(axis=0)
        summary["correct"] = correct
        summary["incorrect"] = incorrect
        with np.errstate(invalid="ignore", divide="ignore"):
            summary["emp_accuracy"] = np.where(voted.sum(axis=0) > 0, correct / voted.sum(axis=0), np.nan)
    summary["polarity"] = [list(map(int, p)) for p in summary["polarity"]]
    return summary


def stored_lf_summary(con, run_id: str) -> list[dict]:
    """The ``lf_summary`` rows of one label run, as dicts, in LF order."""
    relation = con.sql("SELECT * EXCLUDE (run_id) FROM lf_summary WHERE run_id = $run ORDER BY lf", params={"run": run_id})
    columns = relation.columns
    return [dict(zip(columns, row)) for row in relation.fetchall()]
