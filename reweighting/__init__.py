"""Noise detection, per-item weights learned in training, and (later) selection over labelled items."""

from thresher.core.lazy import lazy_exports

_EXPORTS = {
    "DetectConfig": "thresher.reweighting.detect.stage",
    "DetectSummary": "thresher.reweighting.detect.stage",
    "detect": "thresher.reweighting.detect.stage",
    "ReweightConfig": "thresher.reweighting.rescale.stage",
    "ReweightSummary": "thresher.reweighting.rescale.stage",
    "reweight": "thresher.reweighting.rescale.stage",
    "compute_weights": "thresher.reweighting.weights",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
