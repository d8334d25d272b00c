"""Noise detectors: each scores every item in [0, 1] (lower = more likely mislabelled) and flags issues."""

from thresher.core.lazy import lazy_exports

_EXPORTS = {
    "DetectorResult": "thresher.reweighting.detect.base",
    "ConfidentLearning": "thresher.reweighting.detect.confident_learning",
    "SmallLoss": "thresher.reweighting.detect.small_loss",
    "LinearSeparation": "thresher.reweighting.detect.linear_separation",
    "Hybrid": "thresher.reweighting.detect.hybrid",
    "Ensemble": "thresher.reweighting.detect.ensemble",
    "combine_votes": "thresher.reweighting.detect.ensemble",
    "Detector": "thresher.reweighting.detect.base",
    "DETECTORS": "thresher.reweighting.detect.registry",
    "out_of_fold_proba": "thresher.reweighting.detect.confident_learning",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
