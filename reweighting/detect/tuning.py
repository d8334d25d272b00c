"""Choose detect's classifier regularisation (and TF-IDF pruning) from the given labels alone.

Each candidate (C, min_df) gets out-of-fold predicted probabilities on a stratified sample of the
checked items, and the one with the lowest out-of-fold log-loss against the given (noisy) labels is
kept. No gold label is read. Why log-loss: it is what the out-of-fold probabilities are for (cleanlab
reads them as calibrated), and on real rule noise the candidate it prefers was also the best detector
(README, "Noise detectors").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field

from thresher.core.config import StageConfig


class TuneConfig(StageConfig):
    """Candidates tried when ``detect.C`` is ``auto``; ``min_df`` only with TF-IDF features whose
    ``min_df`` is not set in the config."""

    # the logistic regression's C candidates
    C: list[float] = Field(default_factory=lambda: [0.1, 1.0, 10.0], min_length=1)
    # TF-IDF min_df candidates (unless features.tfidf.min_df is set)
    min_df: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    rows: int = Field(5_000, ge=100)  # the sample the candidates are scored on


@dataclass
class Tuned:
    C: float
    min_df: int | None  # None: not tuned (features other than TF-IDF, or min_df set by the user)
    rows: int
    candidates: list[dict[str, Any]] = field(default_factory=list)
    pred_probs: np.ndarray | None = field(default=None, repr=False)  # the best candidate's out-of-fold probabilities

    def as_dict(self) -> dict[str, Any]:
        return {"C": self.C, "min_df": self.min_df, "rows": self.rows, "candidates": self.candidates}


def stratified_sample(labels: np.ndarray, rows: int, n_folds: int, seed: int) -> np.ndarray:
    """Sorted positions of about ``rows`` items, each class in proportion but with at least ``n_folds``
    (or all it has), so that every fold's model sees every class."""
    if len(labels) <= rows:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = min(len(members), max(n_folds, round(rows * len(members) / len(labels))))
        picked.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(picked))


def tune(
    features: Callable[[int | None], Any], labels: np.ndarray, *, Cs: list[float], min_dfs: list[int | None],
    n_folds: int, random_state: int, solver: str = "newton-cg", progress: bool = False,
) -> Tuned:
    """The (C, min_df) of lowest out-of-fold log-loss; ``features(min_df)`` gives the sample's matrix.

    The folds are :func:`out_of_fold_proba`'s. Within a fold the candidates' C are fitted in increasing
    order, each starting from the previous solution (``warm_start``): the same optimum in a fraction of
    the iterations.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    from thresher.core.progress import track

    K = int(labels.max()) + 1
    order = sorted(Cs)
    folds = list(StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state).split(
        np.zeros(len(labels)), labels))
    candidates, probs_of = [], {}
    steps = [(min_df, fold) for min_df in min_dfs for fold in range(n_folds)]
    matrices: dict[int | None, Any] = {}
    probs: dict[tuple[int | None, float], np.ndarray] = {}
    for min_df, fold in track(steps, description="Tuning detect's classifier", enabled=progress):
        if min_df not in matrices:
            matrices = {min_df: features(min_df)}  # one feature matrix in memory at a time
        X = matrices[min_df]
        fit, held = folds[fold]
        model = LogisticRegression(solver=solver, max_iter=2000, warm_start=True)
        for C in order:
            model.set_params(C=C).fit(X[fit], labels[fit])
            out = probs.setdefault((min_df, C), np.zeros((len(labels), K)))
            out[np.ix_(held, model.classes_)] = model.predict_proba(X[held])
    for min_df in min_dfs:
        for C in Cs:
            found = probs[(min_df, C)]
            candidates.append({"C": C, "min_df": min_df,
                               "oof_log_loss": float(log_loss(labels, found, labels=np.arange(K)))})
            probs_of[(min_df, C)] = found
    best = min(candidates, key=lambda c: c["oof_log_loss"])  # the first of equals: the listed order
    return Tuned(best["C"], best["min_df"], len(labels), candidates, probs_of[(best["min_df"], best["C"])])
