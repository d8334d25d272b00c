"""Per-item training weights derived from stored scores (a decision separate from detection)."""

from __future__ import annotations

from typing import Literal

import numpy as np

WeightMethod = Literal["label_quality", "confidence", "quality_x_confidence", "uniform"]


def compute_weights(method: WeightMethod, *, label_quality: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Weights in [0, 1] for each item.

    ``label_quality``: cleanlab's score of the label; ``confidence``: the label model's top
    probability; ``quality_x_confidence``: their product; ``uniform``: all ones.
    """
    if label_quality.shape != confidence.shape:
        raise ValueError(f"label_quality {label_quality.shape} and confidence {confidence.shape} must have one shape.")
    if method == "label_quality":
        return label_quality.astype(float)
    if method == "confidence":
        return confidence.astype(float)
    if method == "quality_x_confidence":
        return (label_quality * confidence).astype(float)
    if method == "uniform":
        return np.ones_like(label_quality, dtype=float)
    raise ValueError(f"The 'method' parameter must be one of {WeightMethod.__args__}. Got {method!r} instead.")
