"""Noise detection, per-item weights learned in training, and (later) selection over labelled items."""

from reweighting.reweight import ReweightConfig, ReweightSummary, reweight
from reweighting.stage import DetectConfig, DetectSummary, detect
from reweighting.weights import compute_weights

__all__ = ["DetectConfig", "DetectSummary", "detect", "ReweightConfig", "ReweightSummary", "reweight",
           "compute_weights"]
