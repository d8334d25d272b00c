"""Noise detectors: each scores every item in [0, 1] (lower = more likely mislabelled) and flags issues."""

from thresher.lazy import lazy_exports

_EXPORTS = {
    "DetectorResult": "reweighting.detect.base",
    "ConfidentLearning": "reweighting.detect.confident_learning",
    "SmallLoss": "reweighting.detect.small_loss",
    "LinearSeparation": "reweighting.detect.linear_separation",
    "Hybrid": "reweighting.detect.hybrid",
    "ensemble": "reweighting.detect.hybrid",
    "out_of_fold_proba": "reweighting.detect.confident_learning",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
