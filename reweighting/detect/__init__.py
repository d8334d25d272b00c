"""Noise detectors: each scores every item in [0, 1] (lower = more likely mislabelled) and flags issues."""

from reweighting.detect.base import DetectorResult
from reweighting.detect.confident_learning import ConfidentLearning, out_of_fold_proba

__all__ = ["DetectorResult", "ConfidentLearning", "out_of_fold_proba"]
