"""The ensemble detector: flag the items that enough other detectors flag."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from thresher.reweighting.detect.base import Detector, DetectorResult, check_rows


def combine_votes(results: list[DetectorResult], *, min_votes: int = 2) -> DetectorResult:
    """Flag items that at least ``min_votes`` detectors flag; score = the mean of their scores."""
    if len(results) < 2:
        raise ValueError(f"An ensemble needs at least 2 detectors. Got {[r.name for r in results]}.")
    if not 1 <= min_votes <= len(results):
        raise ValueError(f"min_votes must be in 1..{len(results)}. Got {min_votes} instead.")
    votes = np.sum([r.is_issue for r in results], axis=0)
    scores = np.mean([r.scores for r in results], axis=0)
    return DetectorResult("ensemble", scores, votes >= min_votes)


class Ensemble(BaseEstimator):
    """A detector over ``members``: an item is an issue when at least ``min_votes`` of them flag it; its
    score is the mean of theirs. Members already fitted (the detect stage fits each once) are not refitted."""

    def __init__(self, *, members: list[Detector] | None = None, min_votes: int = 2) -> None:
        self.members = members
        self.min_votes = min_votes

    def fit(self, X, labels, *, pred_probs: np.ndarray | None = None) -> "Ensemble":
        labels = check_rows(X, labels)
        results = []
        for member in self.members or []:
            try:
                results.append(member.result())
            except NotFittedError:
                results.append(member.fit(X, labels, pred_probs=pred_probs).result())
        self.result_ = combine_votes(results, min_votes=self.min_votes)
        return self

    def result(self) -> DetectorResult:
        check_is_fitted(self, "result_")
        return self.result_
