"""Noise detection, per-item weights and (later) selection over labelled items."""

from reweighting.stage import DetectConfig, DetectSummary, detect
from reweighting.weights import compute_weights

__all__ = ["DetectConfig", "DetectSummary", "detect", "compute_weights"]
