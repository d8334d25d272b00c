"""Denoise LF votes into probabilistic labels with Snorkel's LabelModel or majority vote."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
from snorkel.labeling.model import LabelModel, MajorityLabelVoter

from labeling.config import DenoiseConfig
from labeling.lf.base import ABSTAIN


@contextmanager
def quiet_snorkel() -> Iterator[None]:
    """Silence scipy >= 1.17's dtype-cast FutureWarning raised inside Snorkel; harmless here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def vote_matrix(votes: pa.Table, item_ids: list[str], lf_names: list[str]) -> np.ndarray:
    """Build the dense N x M label matrix L (-1 = abstain) from sparse (item_id, lf, vote) rows."""
    row = {item: i for i, item in enumerate(item_ids)}
    col = {name: j for j, name in enumerate(lf_names)}
    L = np.full((len(item_ids), len(lf_names)), ABSTAIN, dtype=np.int64)
    items = votes.column("item_id").to_pylist()
    lfs = votes.column("lf").to_pylist()
    values = votes.column("vote").to_numpy()
    rows = np.fromiter((row[i] for i in items), dtype=np.int64, count=len(items))
    cols = np.fromiter((col[name] for name in lfs), dtype=np.int64, count=len(lfs))
    L[rows, cols] = values
    return L


def denoise(L_fit: np.ndarray, L: np.ndarray, *, cardinality: int, config: DenoiseConfig) -> np.ndarray:
    """Fit the configured model on ``L_fit`` and return N x K class probabilities for ``L``."""
    if L_fit.shape[1] != L.shape[1]:
        raise ValueError(f"L_fit has {L_fit.shape[1]} LFs but L has {L.shape[1]}.")
    if config.model == "majority":
        return majority_proba(L, cardinality=cardinality)
    if L_fit.shape[1] < 3:
        raise ValueError(
            f"Snorkel's LabelModel needs at least 3 LFs; there are {L_fit.shape[1]}. Add LFs or set "
            f"model: majority."
        )
    if not (L_fit != ABSTAIN).any():
        raise ValueError("No LF voted on any item the label model is fitted on: it cannot be fitted.")
    model = LabelModel(cardinality=cardinality, verbose=False)
    with quiet_snorkel():
        model.fit(
            L_fit,
            class_balance=None if config.class_balance is None else np.asarray(config.class_balance),
            n_epochs=config.n_epochs,
            lr=config.lr,
            l2=config.l2,
            seed=config.seed,
            progress_bar=False,
        )
    with quiet_snorkel():
        return model.predict_proba(L)


def majority_proba(L: np.ndarray, *, cardinality: int) -> np.ndarray:
    """Snorkel's MajorityLabelVoter probabilities (ties share mass; no vote gives uniform)."""
    with quiet_snorkel():
        return MajorityLabelVoter(cardinality=cardinality).predict_proba(L)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of class probabilities."""
    safe = np.clip(probs, 1e-12, 1.0)
    return -(probs * np.log(safe)).sum(axis=1)
