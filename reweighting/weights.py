"""Per-item training weights derived from stored scores (a decision separate from detection)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa

from thresher.storage.arrow_columns import constant_column

WeightMethod = Literal["flagged_quality", "label_quality", "confidence", "quality_x_confidence", "uniform"]


WeightBalance = Literal["per_class", "none"]


def compute_weights(method: WeightMethod, *, label_quality: np.ndarray, confidence: np.ndarray,
                    flagged: np.ndarray | None = None) -> np.ndarray:
    """Weights in [0, 1] for each item (class-aware ones: :func:`per_class_shares` of these).

    ``flagged_quality``: 1 for the items the detector keeps, its label-quality score for the ones it
    flags (down-weighted rather than dropped: the best recipe of benchmarks/curation_value.py);
    ``label_quality``: cleanlab's score of the label; ``confidence``: the label model's top
    probability; ``quality_x_confidence``: their product; ``uniform``: all ones.
    """
    if label_quality.shape != confidence.shape:
        raise ValueError(f"label_quality {label_quality.shape} and confidence {confidence.shape} must have one shape.")
    if method == "flagged_quality":
        if flagged is None or flagged.shape != label_quality.shape:
            raise ValueError("flagged_quality needs the detector's flags, one per item.")
        return np.where(flagged, label_quality, 1.0).astype(float)
    if method == "label_quality":
        return label_quality.astype(float)
    if method == "confidence":
        return confidence.astype(float)
    if method == "quality_x_confidence":
        return (label_quality * confidence).astype(float)
    if method == "uniform":
        return np.ones_like(label_quality, dtype=float)
    raise ValueError(f"The 'method' parameter must be one of {WeightMethod.__args__}. Got {method!r} instead.")


def per_class_shares(weights: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``weights`` rescaled within each class so that the class holds the share of the total weight it
    holds of the items, the total unchanged; the order of the items within a class is kept.

    A score such as label quality is lower on a minority class whatever the labels' accuracy (the
    classifier is less sure of it), so raw scores as weights would crush that class. A class whose
    weights are all 0 stays at 0 (the shares are then among the other classes).
    """
    weights = np.asarray(weights, dtype=float)
    labels = np.asarray(labels)
    if weights.shape != labels.shape:
        raise ValueError(f"weights {weights.shape} and labels {labels.shape} must have one shape.")
    total = weights.sum()
    out = weights.copy()
    if total <= 0:
        return out
    classes, inverse = np.unique(labels, return_inverse=True)
    class_totals = np.bincount(inverse, weights=weights, minlength=len(classes))
    weighted = class_totals[inverse] > 0
    mean = total / weighted.sum()  # over the items of classes with some weight: the total is kept
    for c in np.flatnonzero(class_totals > 0):
        in_class = inverse == c
        out[in_class] *= in_class.sum() * mean / class_totals[c]
    return out


def weight_share(weights: np.ndarray, labels: np.ndarray, n_classes: int) -> list[float]:
    """Each class's share of the total weight."""
    totals = np.bincount(labels, weights=weights, minlength=n_classes)
    return (totals / totals.sum()).tolist() if totals.sum() > 0 else [0.0] * n_classes


def balanced(weights: np.ndarray, labels: np.ndarray, balance: WeightBalance,
             names: list[str]) -> tuple[np.ndarray, dict[str, object]]:
    """The weights as stored (:func:`per_class_shares` under ``per_class``) and what the summary shows
    of them: each class's share of the items, of the weight, and of the weight before balancing."""
    raw = np.asarray(weights, dtype=float)
    out = per_class_shares(raw, labels) if balance == "per_class" else raw
    K = len(names)
    shares = {"items": np.bincount(labels, minlength=K) / max(len(labels), 1), "weight": weight_share(out, labels, K),
              "weight_unbalanced": weight_share(raw, labels, K)}
    return out, {"balance": balance,
                 "share": {name: {k: round(float(v[c]), 4) for k, v in shares.items()} for c, name in enumerate(names)}}


FLAG_BELOW = 0.5


def weight_rows(run_id: str, stage: str, item_ids: list[str] | pa.Array, method: str, weights: np.ndarray,
                history: np.ndarray | None = None, flagged: np.ndarray | None = None) -> pa.Table:
    """Rows of the ``weights`` table: the final weight, its flag (``flagged``, e.g. the detector's own
    flags; default: weight < 0.5) and, when the weights were learned over epochs (``history``: epochs x
    items), their trajectory summary."""
    n = len(item_ids)
    if weights.shape != (n,):
        raise ValueError(f"weights has shape {weights.shape}; expected ({n},), one per item.")
    if flagged is not None and flagged.shape != (n,):
        raise ValueError(f"flagged has shape {flagged.shape}; expected ({n},), one per item.")
    columns = {"run_id": constant_column(run_id, n), "stage": constant_column(stage, n), "item_id": item_ids,
               "method": constant_column(method, n), "weight": weights.astype(float),
               "flagged": weights < FLAG_BELOW if flagged is None else flagged.astype(bool)}
    if history is None:
        empty = pa.nulls(n, pa.float64())
        columns.update(weight_first=empty, weight_mean=empty, weight_min=empty, weight_max=empty,
                       epochs_flagged=pa.nulls(n, pa.int32()))
    else:
        if history.ndim != 2 or history.shape[1] != n:
            raise ValueError(f"history has shape {history.shape}; expected (epochs, {n}).")
        columns.update(weight_first=history[0], weight_mean=np.nanmean(history, axis=0),
                       weight_min=np.nanmin(history, axis=0), weight_max=np.nanmax(history, axis=0),
                       epochs_flagged=(history < FLAG_BELOW).sum(axis=0).astype(np.int32))
    return pa.table(columns)
