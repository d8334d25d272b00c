"""Denoise LF votes into probabilistic labels with Snorkel's LabelModel or majority vote."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from snorkel.labeling.model import LabelModel, MajorityLabelVoter

from thresher.labeling.config import DenoiseConfig
from thresher.labeling.lf.base import ABSTAIN


@contextmanager
def quiet_snorkel() -> Iterator[None]:
    """Silence scipy >= 1.17's dtype-cast FutureWarning raised inside Snorkel; harmless here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


@dataclass
class Denoised:
    """The chosen model's class probabilities for every item, and what was chosen.

    ``learned_accuracy`` holds the LabelModel's estimated accuracy of each LF (None for
    majority vote); ``selection`` lists every candidate's dev score when selection ran.
    """

    probs: np.ndarray
    params: dict[str, Any]
    learned_accuracy: np.ndarray | None = None
    selection: list[dict[str, Any]] = field(default_factory=list)


def score(y: np.ndarray, predicted: np.ndarray, metric: str) -> float:
    """Accuracy, F1 of class 1 (binary), or macro F1."""
    if metric == "accuracy":
        return float((y == predicted).mean())
    if metric == "f1":
        return float(f1_score(y, predicted, pos_label=1, average="binary", zero_division=0))
    return float(f1_score(y, predicted, average="macro", zero_division=0))


def _fit(L_fit: np.ndarray, L: np.ndarray, *, cardinality: int, params: dict[str, Any],
         class_balance: list[float] | None, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    if params["model"] == "majority":
        return majority_proba(L, cardinality=cardinality), None
    if L_fit.shape[1] < 3:
        raise ValueError(
            f"Snorkel's LabelModel needs at least 3 LFs; there are {L_fit.shape[1]}. Add LFs or set model: majority."
        )
    if not (L_fit != ABSTAIN).any():
        raise ValueError("No LF voted on any item the label model is fitted on: it cannot be fitted.")
    model = LabelModel(cardinality=cardinality, verbose=False)
    with quiet_snorkel():
        model.fit(
            L_fit,
            class_balance=None if class_balance is None else np.asarray(class_balance),
            n_epochs=params["n_epochs"], lr=params["lr"], l2=params["l2"], seed=seed, progress_bar=False,
        )
        with np.errstate(divide="ignore", invalid="ignore"):  # LFs that never fire: Snorkel divides by 0
            learned = np.clip(np.nan_to_num(model.get_weights(), nan=0.0), 0.0, 1.0)
        return model.predict_proba(L), learned


def _configured(config: DenoiseConfig) -> dict[str, Any]:
    if config.model == "majority":
        return {"model": "majority"}
    return {"model": "label_model", "n_epochs": config.n_epochs, "lr": config.lr, "l2": config.l2}


def denoise(
    L_fit: np.ndarray, L: np.ndarray, *, cardinality: int, config: DenoiseConfig,
    dev: tuple[np.ndarray, np.ndarray] | None = None,
) -> Denoised:
    """Fit on ``L_fit`` and return probabilities for ``L``.

    ``dev`` is ``(L_dev, y_dev)``: with it every candidate is scored on the gold dev labels and the
    best is kept (the configured settings first, so ties keep them).
    """
    if L_fit.shape[1] != L.shape[1]:
        raise ValueError(f"L_fit has {L_fit.shape[1]} LFs but L has {L.shape[1]}; they must match.")
    candidates = [_configured(config)]
    if dev is not None:
        grid = config.grid
        for n_epochs, lr, l2 in itertools.product(grid.n_epochs, grid.lr, grid.l2):
            candidates.append({"model": "label_model", "n_epochs": n_epochs, "lr": lr, "l2": l2})
        if grid.include_majority:
            candidates.append({"model": "majority"})
        candidates = [dict(t) for t in dict.fromkeys(tuple(c.items()) for c in candidates)]
    if L_fit.shape[1] < 3:
        candidates = [c for c in candidates if c["model"] == "majority"] or candidates
    if dev is None:
        probs, learned = _fit(L_fit, L, cardinality=cardinality, params=candidates[0],
                              class_balance=config.class_balance, seed=config.seed)
        return Denoised(probs, candidates[0], learned)

    L_dev, y_dev = dev
    best: Denoised | None = None
    best_score = -np.inf
    selection = []
    for params in candidates:
        probs, learned = _fit(L_fit, np.vstack([L, L_dev]), cardinality=cardinality, params=params,
                              class_balance=config.class_balance, seed=config.seed)
        dev_score = score(y_dev, probs[len(L):].argmax(axis=1), config.metric)
        selection.append({**params, f"dev_{config.metric}": dev_score})
        if dev_score > best_score:
            best_score, best = dev_score, Denoised(probs[: len(L)], params, learned)
    assert best is not None
    best.selection = selection
    return best


def majority_proba(L: np.ndarray, *, cardinality: int) -> np.ndarray:
    """Snorkel's MajorityLabelVoter probabilities (ties share mass; no vote gives uniform)."""
    with quiet_snorkel():
        return MajorityLabelVoter(cardinality=cardinality).predict_proba(L)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of class probabilities."""
    safe = np.clip(probs, 1e-12, 1.0)
    return -(probs * np.log(safe)).sum(axis=1)
