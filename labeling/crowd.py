"""Dawid-Skene crowd aggregation (crowd-kit's ``DawidSkene``) as a label model over a vote matrix.

Each LF is a worker with its own confusion matrix. This is the model crowdsourcing users expect: it
suits sources that vote every class (annotators). A source that only ever votes one class (most
programmatic LFs) carries no information in it, since only its votes are modelled, not its abstains.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from thresher.labeling.lf.base import ABSTAIN


def _long(L: np.ndarray) -> pd.DataFrame:
    """crowd-kit's input: one (task, worker, label) row per vote."""
    items, lfs = np.nonzero(L != ABSTAIN)
    return pd.DataFrame({"task": items, "worker": lfs, "label": L[items, lfs].astype(np.int64)})


def fit_dawid_skene(
    L_fit: np.ndarray, *, cardinality: int, n_iter: int = 100, one_coin: bool = False,
) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    """Fit by EM on ``L_fit``; return predict_proba for any L over the same LFs and each LF's learned
    accuracy (the chance its vote is the true class, under the learned class prior).

    A vote pattern seen in ``L_fit`` gets crowd-kit's own posterior for it (``probas_``, the last E-step
    of the fit, so the labels are crowd-kit's exactly); an unseen one gets one E-step with the fitted
    priors and confusion matrices; an item no LF voted on gets the prior; a class no LF ever voted
    gets probability 0 (the model cannot know it).
    """
    from crowdkit.aggregation import DawidSkene, OneCoinDawidSkene

    model = (OneCoinDawidSkene if one_coin else DawidSkene)(n_iter=n_iter).fit(_long(L_fit))
    priors = model.priors_.reindex(range(cardinality), fill_value=0.0).to_numpy(dtype=float)
    errors = model.errors_
    fitted = model.probas_.reindex(columns=range(cardinality), fill_value=0.0).fillna(0.0)
    def key(row: np.ndarray) -> bytes:
        return row.astype(np.int64).tobytes()

    seen = {key(L_fit[task]): row for task, row in zip(fitted.index.to_numpy(), fitted.to_numpy(dtype=float))}

    def predict(L: np.ndarray) -> np.ndarray:
        probs = np.tile(priors, (len(L), 1))
        found = [seen.get(key(row)) for row in L]
        known = np.array([row is not None for row in found], dtype=bool)
        for i in np.flatnonzero(known):
            probs[i] = found[i]
        data = _long(L[~known])
        if len(data):
            posterior = DawidSkene._e_step(data, model.priors_.copy(), errors)
            posterior = posterior.reindex(columns=range(cardinality), fill_value=0.0).fillna(0.0)
            probs[np.flatnonzero(~known)[posterior.index.to_numpy()]] = posterior.to_numpy(dtype=float)
        return probs

    learned = np.zeros(L_fit.shape[1])
    for (lf, vote), row in errors.iterrows():  # P(vote = v | true = v), weighted by the prior of v
        if vote in row.index:
            learned[int(lf)] += priors[int(vote)] * float(row[vote])
    return predict, learned
