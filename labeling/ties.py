"""Ties between a label model's most probable classes: which classes tie, and how an item's tie is
resolved (never to the first class, which would inflate it)."""

from __future__ import annotations

import numpy as np

TIE_TOLERANCE = 1e-5  # Snorkel's probs_to_preds: classes within this of the maximum tie


def top_classes(probs: np.ndarray) -> np.ndarray:
    """For each row, which classes are within ``TIE_TOLERANCE`` of its maximum."""
    return probs >= probs.max(axis=1, keepdims=True) - TIE_TOLERANCE


def hard_labels(probs: np.ndarray, tie_hash: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each item's label and whether it was a tie. A tie goes to one of the tied classes chosen by
    the item's hash, as Snorkel's ``tie_break_policy="random"`` but the same item gets the same class
    in every run and batch."""
    tied_classes = top_classes(probs)
    n_tied = tied_classes.sum(axis=1)
    which = (np.asarray(tie_hash, dtype=np.uint64) % n_tied.astype(np.uint64)).astype(np.int64)
    label = (np.cumsum(tied_classes, axis=1) > which[:, None]).argmax(axis=1)
    return label, n_tied > 1


def snorkel_tie_hash(rows: np.ndarray, n_classes: int) -> np.ndarray:
    """Tie hashes that make :func:`hard_labels` break ties as Snorkel's ``probs_to_preds`` with
    ``tie_break_policy="random"`` does for rows at positions ``rows`` of its matrix: the SHA-1 of the
    row number, reduced modulo the least common multiple of 1..``n_classes`` (so that modulo any
    number of tied classes it is Snorkel's choice)."""
    import hashlib
    import math

    modulus = math.lcm(*range(1, n_classes + 1))
    return np.array([int(hashlib.sha1(str(int(i)).encode("utf-8")).hexdigest(), 16) % modulus for i in rows],
                    dtype=np.uint64)


def shared_ties(probs: np.ndarray) -> np.ndarray:
    """One-hot of each row's most probable class, a tie's mass shared among the tied classes (the
    expected one-hot under a random tie-break)."""
    top = top_classes(probs)
    return top / top.sum(axis=1, keepdims=True)
