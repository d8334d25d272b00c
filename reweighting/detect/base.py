"""The result every noise detector returns: one score and one flag per item."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

# cleanlab's filter_by choices (find_label_issues), for confident learning.
FilterBy = Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given"]


@dataclass(frozen=True)
class DetectorResult:
    """Per-item label-quality ``scores`` in [0, 1] (lower means more likely mislabelled)
    and boolean ``is_issue`` flags, from the detector called ``name``."""

    name: str
    scores: np.ndarray
    is_issue: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)  # what the detector ran: rounds, fallbacks

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=float))
        object.__setattr__(self, "is_issue", np.asarray(self.is_issue))
        if self.scores.shape != self.is_issue.shape or self.scores.ndim != 1:
            raise ValueError(
                f"scores and is_issue must be 1-D of equal length. Got shapes {self.scores.shape} "
                f"and {self.is_issue.shape} instead."
            )
        if len(self.scores) and (np.nanmin(self.scores) < 0 or np.nanmax(self.scores) > 1):
            raise ValueError(f"Detector {self.name!r} produced scores outside [0, 1].")

    def summary(self) -> dict[str, Any]:
        return {"n": int(len(self.scores)), "n_issues": int(self.is_issue.sum()),
                "issue_rate": float(self.is_issue.mean()) if len(self.scores) else 0.0,
                "mean_score": float(self.scores.mean()) if len(self.scores) else float("nan"), **self.info}


class Detector(Protocol):
    """What every noise detector is: an estimator fitted on the features ``X`` (n x d) and the given
    ``labels`` (n class ids), optionally with out-of-fold ``pred_probs`` (n x K) it would otherwise
    compute, whose ``result()`` scores every item (lower = more likely mislabelled) and flags issues.

    A detector is registered with its settings in :mod:`thresher.reweighting.detect.registry`;
    ``tests/reweighting/test_detector_contract.py`` checks every registered one.
    """

    def fit(self, X: Any, labels: np.ndarray, *, pred_probs: np.ndarray | None = None) -> "Detector": ...

    def result(self) -> DetectorResult: ...


def checked_result(result: Any, n_items: int, name: str) -> DetectorResult:
    """A detector's ``result()`` checked to be a :class:`DetectorResult` with one boolean flag and one
    score per item, so that a user's detector that breaks the contract fails with a message that says how."""
    if not isinstance(result, DetectorResult):
        raise TypeError(f"Detector {name!r}: result() must return a thresher DetectorResult(name, scores, is_issue); "
                        f"got {type(result).__name__}.")
    if result.scores.shape != (n_items,):
        raise ValueError(f"Detector {name!r} returned {result.scores.shape[0]} scores for {n_items} items; "
                         "it must score every item it was fitted on, in order.")
    if result.is_issue.dtype != bool:
        raise ValueError(f"Detector {name!r}: is_issue must be a boolean array; got dtype {result.is_issue.dtype}.")
    if np.isnan(result.scores).any():
        raise ValueError(f"Detector {name!r} returned NaN scores for {int(np.isnan(result.scores).sum())} items.")
    return result


def check_rows(X, values, name: str = "labels", *, dtype=None) -> np.ndarray:
    """``values`` as a 1-D array with one entry per row of ``X``; a clear error otherwise."""
    values = np.asarray(values, dtype=dtype)
    rows = X.shape[0] if hasattr(X, "shape") else len(X)
    if values.ndim != 1 or rows != values.shape[0]:
        raise ValueError(f"X has {rows} rows but {name} has shape {values.shape}; they must match.")
    return values


def spare_whole_labels(flags: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``flags`` with the flags of every label whose items are all flagged taken back.

    A detector that flags every item of a label cannot tell that label's right items from its wrong
    ones, and dropping them all would leave the label nothing to train on (cleanlab keeps
    ``min_examples_per_class`` items for the same reason). Seen with small-loss on TREC's rare ABBR.

    >>> spare_whole_labels(np.array([True, True, False, True]), np.array([2, 2, 0, 0])).tolist()
    [False, False, False, True]
    """
    flags = flags.copy()
    for label in np.unique(labels):
        members = labels == label
        if flags[members].all():
            flags[members] = False
    return flags
