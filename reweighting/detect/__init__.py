"""Noise detectors: each scores every item in [0, 1] (lower = more likely mislabelled) and flags issues."""

from reweighting.detect.base import DetectorResult
from reweighting.detect.confident_learning import ConfidentLearning, out_of_fold_proba
from reweighting.detect.hybrid import Hybrid, ensemble
from reweighting.detect.linear_separation import LinearSeparation
from reweighting.detect.small_loss import SmallLoss

__all__ = ["DetectorResult", "ConfidentLearning", "SmallLoss", "LinearSeparation", "Hybrid", "ensemble",
           "out_of_fold_proba"]
